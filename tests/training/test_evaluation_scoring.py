"""Evaluation scores on crafted responses (yes/no/maybe accuracy, ROUGE-L, keyword coverage, their means), the
question bank's checks, the shipped autoimmune bank, and perplexity against a direct computation with the
model's own loss (ours and a transformers Llama)."""

from __future__ import annotations

import doctest
import itertools
import json
import math

import pytest
import torch
import transformers

import training.evaluation.perplexity as perplexity_module
import training.evaluation.question_bank as bank_module
import training.evaluation.scoring as scoring_module
from minillm import DecoderOnlyModel
from minillm.errors import InputError
from training.evaluation.perplexity import perplexity, read_held_out, token_stream, windows_of
from training.evaluation.question_bank import DEFAULT_BANK, Question, load_bank
from training.evaluation.scoring import aggregate, keyword_coverage, parse_label, rouge_l, score_response

VOCAB = 64


@pytest.mark.parametrize("module", [scoring_module, perplexity_module, bank_module])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("response", "label"), [
    ("Yes, it does.", "yes"), ("NO. Maybe later, yes.", "no"), ("It is maybe so; no one knows.", "maybe"),
    ("Nobody knows; the yesterday study says nothing.", None), ("", None), ("The answer: no", "no"),
])
def test_the_label_is_the_first_whole_word_yes_no_or_maybe(response, label):
    assert parse_label(response) == label


def test_accuracy_scores_the_parsed_label_against_the_answer_and_nothing_else():
    labelled = Question(id="p1", question="Does X help?", answer="Yes", context="Background: ...")
    assert score_response(labelled, "yes, it does") == {"accuracy": 1.0}
    assert score_response(labelled, "No; maybe yes.") == {"accuracy": 0.0}
    assert score_response(labelled, "It is unclear.") == {"accuracy": 0.0}  # no label word: wrong
    items = [{"scores": score_response(labelled, r), "time_seconds": t}
             for r, t in (("yes", 1.0), ("no", 2.0), ("maybe", 3.0), ("Yes!", 6.0))]
    summary = aggregate(items)
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["rouge_l"] is None and summary["keyword_coverage"] is None
    assert summary["n"] == 4 and summary["mean_seconds"] == pytest.approx(3.0)
    assert summary["total_seconds"] == pytest.approx(12.0)


def test_rouge_l_is_the_stemmed_lcs_f_measure():
    # LCS of "the cat sat on the mat" and "the cat lay on a mat" is "the cat on mat": P = R = 4/6
    assert rouge_l("the cat lay on a mat", "the cat sat on the mat") == pytest.approx(4 / 6)
    assert rouge_l("The cats running", "the cat runs") == pytest.approx(1.0)  # stems: the cat run
    assert rouge_l("completely different words", "the cat runs") == 0.0
    assert rouge_l("", "the cat runs") == 0.0
    # recall 2/4, precision 2/2: F = 2PR / (P + R) = 2/3
    assert rouge_l("cat mat", "the cat on mat") == pytest.approx(2 / 3)


def test_keyword_coverage_counts_whole_words_and_phrases_in_any_case():
    keywords = ["TNF", "IL-6", "joint", "rheumatoid factor"]
    assert keyword_coverage("tnf and il-6 rise in the joints", keywords) == pytest.approx(2 / 4)
    assert keyword_coverage("Rheumatoid Factor, TNF, IL-6; the joint.", keywords) == 1.0
    assert keyword_coverage("rheumatoid factors only", keywords) == 0.0
    with pytest.raises(ValueError):
        keyword_coverage("anything", [])


def test_a_reference_answer_scores_rouge_and_keywords_and_the_means_skip_missing_scores():
    question = Question(id=1, question="q?", answer="Gluten-free diet for life", keywords=("gluten-free", "life"))
    perfect = score_response(question, "A gluten-free diet for life")
    assert set(perfect) == {"rouge_l", "keyword_coverage"} and perfect["keyword_coverage"] == 1.0
    assert 0.8 < perfect["rouge_l"] < 1.0
    no_reference = score_response(Question(id=2, question="q?", keywords=("x",)), "x y")
    assert no_reference == {"keyword_coverage": 1.0}
    items = [{"scores": perfect, "time_seconds": 1.0}, {"scores": no_reference, "time_seconds": 1.0},
             {"scores": {}, "time_seconds": 4.0}]
    summary = aggregate(items)
    assert summary["rouge_l"] == pytest.approx(perfect["rouge_l"])  # only the item that has it
    assert summary["keyword_coverage"] == pytest.approx(1.0)
    assert summary["accuracy"] is None and summary["mean_seconds"] == pytest.approx(2.0)


def test_the_shipped_bank_has_ten_complete_questions_whose_answers_hold_their_keywords():
    bank = load_bank()
    assert bank.source == str(DEFAULT_BANK) and len(bank.questions) == 10
    assert len({q.key for q in bank.questions}) == 10
    for question in bank.questions:
        assert question.category and question.difficulty in ("easy", "medium", "hard")
        assert question.answer and len(question.keywords) >= 4
        assert score_response(question, question.answer) == {"rouge_l": pytest.approx(1.0), "keyword_coverage": 1.0}


def test_pubmedqa_banks_are_labelled_with_their_abstract_as_context():
    bank = load_bank("pubmedqa:7")
    assert bank.source == "pubmedqa:7" and len(bank.questions) == 7
    assert all(q.answer in ("yes", "no", "maybe") and len(q.context) > 200 for q in bank.questions)
    assert len(load_bank("pubmedqa").questions) == 500
    with pytest.raises(InputError, match="pubmedqa:0"):
        load_bank("pubmedqa:0")


@pytest.mark.parametrize(("content", "expected"), [
    ({"question": "a"}, "holds a JSON dict"),
    ([], "empty list"),
    ([{"question": "ok"}, {"answer": "no question"}], "item 1 has no 'question'"),
    ([{"question": "ok"}, {"question": "ok"}, "text"], "item 2 is a JSON str"),
    ([{"question": "   "}], "item 0 has question='   '"),
    ([{"question": "a", "keywords": "x"}], "item 0: 'keywords' must be a list"),
    ([{"id": 1, "question": "a"}, {"id": "1", "question": "b"}], "item 1 repeats id '1'"),
])
def test_a_bad_bank_is_refused_naming_the_first_bad_item(tmp_path, content, expected):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace("[", r"\[")) as info:
        load_bank(path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- perplexity
class ByteTokenizer:
    """Bytes folded into the vocabulary; id 1 is eos, 0 pad."""

    eos_token_id, pad_token_id = 1, 0

    def encode(self, text, add_special_tokens=True):
        return [2 + b % (VOCAB - 2) for b in text.encode()]


TEXTS = ["The immune system attacks the body's own tissue.", "Celiac disease: a gluten-free diet.",
         "Myasthenia gravis weakens muscles; thymectomy may help."]


def _ours(seed: int = 0, max_seq_len: int = 32) -> DecoderOnlyModel:
    torch.manual_seed(seed)
    return DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": VOCAB, "d_model": 32, "num_heads": 2,
                             "num_layers": 2, "max_seq_len": max_seq_len}).eval()


def test_windows_cover_the_stream_predicting_every_token_after_the_first_once():
    stream = list(range(23))
    windows = windows_of(stream, 5)
    predicted = [token for window in windows for token in window[1:]]
    assert predicted == stream[1:]
    assert all(len(w) <= 5 for w in windows) and all(a[-1] == b[0] for a, b in itertools.pairwise(windows))


def test_perplexity_of_one_window_is_exp_of_the_models_own_loss():
    model = _ours()
    ids = token_stream(ByteTokenizer(), TEXTS[:1])
    assert len(ids) <= 64
    with torch.no_grad():
        expected = math.exp(float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss))
    result = perplexity(model, ByteTokenizer(), TEXTS[:1], window=64)
    assert result.windows == 1 and result.tokens == len(ids) - 1
    assert result.perplexity == pytest.approx(expected, rel=1e-5)


def test_perplexity_over_windows_matches_the_loss_per_window_and_ignores_padding():
    model = _ours(seed=3)
    stream = token_stream(ByteTokenizer(), TEXTS)
    window = 16  # the model's context is 32; many windows, the last one shorter (padded in a batch)
    windows = windows_of(stream, window)
    assert len(windows[-1]) < window and len(windows) % 4 >= 2  # batches of 4: the short last one is padded
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            loss = model(input_ids=torch.tensor([w]), labels=torch.tensor([w])).loss
            total += float(loss) * (len(w) - 1)
            count += len(w) - 1
    one = perplexity(model, ByteTokenizer(), TEXTS, window=window, batch_size=1)
    batched = perplexity(model, ByteTokenizer(), TEXTS, window=window, batch_size=4)
    assert one.tokens == batched.tokens == count == len(stream) - 1
    assert one.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
    assert batched.perplexity == pytest.approx(one.perplexity, rel=1e-5)
    assert perplexity(model, ByteTokenizer(), TEXTS).window == 32  # the model's context by default
    capped = perplexity(model, ByteTokenizer(), TEXTS, max_tokens=20, window=window)
    assert capped.tokens == 20


def test_perplexity_of_a_transformers_llama_is_exp_of_its_loss():
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = token_stream(ByteTokenizer(), TEXTS[1:2])
    with torch.no_grad():
        expected = math.exp(float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss))
    assert perplexity(model, ByteTokenizer(), TEXTS[1:2]).perplexity == pytest.approx(expected, rel=1e-5)


def test_held_out_files_give_one_text_per_item(tmp_path):
    (tmp_path / "val.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"text": "plain"}, {"input": "q", "output": "a"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]))
    assert read_held_out(tmp_path / "val.jsonl") == ["plain", "q\na", "hi\nhello"]
    (tmp_path / "val.txt").write_text("one text\n\nstill one")
    assert read_held_out(tmp_path / "val.txt") == ["one text\n\nstill one"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_held_out(tmp_path / "missing.txt")
    (tmp_path / "val.csv").write_text("a,b")
    with pytest.raises(InputError, match="'.csv'"):
        read_held_out(tmp_path / "val.csv")
