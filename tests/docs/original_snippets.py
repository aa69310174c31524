"""The code blocks of the original Mini LLM docs, as users copy them.

Kept verbatim; the tests only replace imports by the README's "From the original docs" table and, where a
block's comment offers it, ``device="cuda"`` by ``device="cpu"``. Each block runs after the ones before it in
one script, in a folder holding ``./data/train.txt`` and ``./data/new_data.txt``; the two RAG blocks run in
their own script, in a folder holding ``./data/knowledge_base.txt`` and a decoder at ``./checkpoints/best``.
"""

ENCODER_USAGE = '''
from models.encoder_model import EncoderOnlyModel

# Create a new encoder-only model
config = {
    "model_type": "encoder_only",
    "vocab_size": 10000,
    "d_model": 256,
    "num_heads": 4,
    "num_layers": 4,
    "d_ff": 1024,
    "max_seq_len": 512,
    "dropout": 0.1
}

model = EncoderOnlyModel(config)

# Forward pass for getting hidden states
hidden_states = model(input_ids, attention_mask)

# Forward pass for MLM prediction
mlm_logits = model.predict_mlm(input_ids, attention_mask)
'''

TRAIN_ENCODER = '''
# In main.py or a custom script

from models.encoder_model import EncoderOnlyModel
from training.enhanced_trainer import Trainer
from tokenizers.bpe_tokenizer import BPETokenizer
from training.data_utils import load_and_split_data, create_dataloaders

# Load and prepare data
train_texts, val_texts, _ = load_and_split_data(
    file_path="./data/train.txt",
    split_method="paragraph",
    val_split=0.1,
    test_split=0.0
)

# Create or load tokenizer
tokenizer = BPETokenizer(vocab_size=10000)
tokenizer.train(train_texts)
tokenizer.save("./data/tokenizer.json")

# Create dataloaders
train_dataloader, val_dataloader = create_dataloaders(
    train_texts=train_texts,
    val_texts=val_texts,
    tokenizer=tokenizer,
    batch_size=16,
    max_length=512
)

# Create encoder-only model
config = {
    "model_type": "encoder_only",
    "vocab_size": tokenizer.vocab_size,
    "d_model": 256,
    "num_heads": 4,
    "num_layers": 4,
    "d_ff": 1024,
    "max_seq_len": 512,
    "dropout": 0.1
}

model = EncoderOnlyModel(config)

# Create trainer with early stopping
trainer = Trainer(
    model=model,
    train_dataloader=train_dataloader,
    val_dataloader=val_dataloader,
    learning_rate=1e-3,
    checkpoint_dir="./checkpoints/encoder_model",
    early_stopping_patience=5
)

# Train model
results = trainer.train(epochs=20)
'''

EARLY_STOPPING = '''
from training.enhanced_trainer import Trainer

# Create a trainer with early stopping
trainer = Trainer(
    model=model,
    train_dataloader=train_dataloader,
    val_dataloader=val_dataloader,
    learning_rate=1e-3,
    checkpoint_dir="./checkpoints",
    device="cuda",  # or "mps" for Mac GPU, "cpu" for CPU
    early_stopping_patience=5,  # Stop after 5 epochs with no improvement
    early_stopping_min_delta=0.01  # Minimum improvement to count as progress
)

# Train with early stopping
results = trainer.train(epochs=30)  # Will stop early if triggered

# Check if early stopping was triggered
if results["early_stopped"]:
    print(f"Training stopped early after {results['epochs_completed']} epochs")
'''

LOAD_MODEL = '''
from training.model_extraction import load_model_and_tokenizer

# Load a model and tokenizer
model, tokenizer = load_model_and_tokenizer(
    model_path="./checkpoints/best_model",
    tokenizer_path="./data/tokenizer.json",  # Optional, will try to infer if not provided
    device="cuda"  # or "mps" for Mac GPU, "cpu" for CPU
)
'''

CONTINUE_TRAINING = '''
from training.model_extraction import continue_training

# Continue training from a checkpoint
results = continue_training(
    model_path="./checkpoints/best_model",
    train_dataloader=train_dataloader,
    val_dataloader=val_dataloader,
    learning_rate=1e-4,  # Lower learning rate for fine-tuning
    epochs=5,
    checkpoint_dir="./checkpoints/continued",
    early_stopping_patience=3
)
'''

EXTRACT = '''
from training.model_extraction import extract_model_for_inference

# Extract a model for inference
extracted_path = extract_model_for_inference(
    model_path="./checkpoints/best_model",
    output_path="./models/inference_model",
    device="cpu"  # Extract on CPU for maximum compatibility
)
'''

FINE_TUNE = '''
# In a custom script

from training.model_extraction import continue_training
from training.data_utils import load_and_split_data, create_dataloaders
from tokenizers.bpe_tokenizer import BPETokenizer

# Load new training data
train_texts, val_texts, _ = load_and_split_data(
    file_path="./data/new_data.txt",
    split_method="paragraph",
    val_split=0.1,
    test_split=0.0
)

# Load existing tokenizer
tokenizer = BPETokenizer.load("./data/tokenizer.json")

# Create dataloaders
train_dataloader, val_dataloader = create_dataloaders(
    train_texts=train_texts,
    val_texts=val_texts,
    tokenizer=tokenizer,
    batch_size=16,
    max_length=512
)

# Continue training from a checkpoint
results = continue_training(
    model_path="./checkpoints/best_model",
    train_dataloader=train_dataloader,
    val_dataloader=val_dataloader,
    learning_rate=5e-5,  # Lower learning rate for fine-tuning
    epochs=10,
    checkpoint_dir="./checkpoints/fine_tuned",
    early_stopping_patience=3
)
'''

RAG_USAGE = '''
from models.rag_utils import SimpleDocumentStore, DocumentProcessor, RAGModel

# Create a document store
doc_store = SimpleDocumentStore(embedding_dim=256)

# Process and add documents
text = "Your long document text here..."
chunks = DocumentProcessor.split_text(
    text, 
    method="semantic",  # Options: paragraph, sentence, chunk, semantic, regex
    min_length=50,
    max_length=500
)

# Add documents to the store
doc_store.add_documents(chunks)

# Compute embeddings
doc_store.compute_embeddings()

# Save the document store for later use
doc_store.save("./data/document_store.pkl")

# Create a RAG model with your language model
from training.model_extraction import load_model_and_tokenizer
model, tokenizer = load_model_and_tokenizer("./checkpoints/best_model")

rag_model = RAGModel(doc_store, model)

# Generate text with RAG
response = rag_model.generate(
    query="What is the capital of France?",
    top_k=3,  # Number of documents to retrieve
    max_length=100,
    temperature=0.7
)
'''

RAG_WITH_TRAINED_MODEL = '''
# In a custom script

from models.rag_utils import SimpleDocumentStore, DocumentProcessor, RAGModel
from training.model_extraction import load_model_and_tokenizer

# Load your trained model
model, tokenizer = load_model_and_tokenizer("./checkpoints/best_model")

# Create a document store
doc_store = SimpleDocumentStore(embedding_dim=256)

# Load and process documents
with open("./data/knowledge_base.txt", "r") as f:
    text = f.read()

# Split text into chunks
chunks = DocumentProcessor.split_text(
    text, 
    method="semantic",
    min_length=50,
    max_length=500
)

# Add documents to the store
doc_store.add_documents(chunks)

# Compute embeddings
doc_store.compute_embeddings()

# Create a RAG model
rag_model = RAGModel(doc_store, model)

# Generate text with RAG
response = rag_model.generate(
    query="What is machine learning?",
    top_k=3,
    max_length=200,
    temperature=0.7
)

print(response)
'''
