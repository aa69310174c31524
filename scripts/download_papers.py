"""download_papers: search arXiv or PubMed and save the papers (PDFs or abstract texts) plus papers.json.

Requests keep each API's rate limit (arXiv: one per 3 s; NCBI: 3 per second, 10 with --api_key) and are retried
with backoff on 429/5xx and network errors. Re-running with the same --output_dir skips papers already saved, so
an interrupted run resumes. Exit codes: 0 when every paper was saved (or already there); 1 when the search itself
failed after its retries (one line naming the URL and the status) or when some papers failed (the summary lists
them; a re-run tries them again); 2 for bad input (one line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = """examples:
  python main.py download_papers --query "retrieval augmented generation" --categories cs.CL cs.LG --max_results 20
  python main.py download_papers --query "ti:transformer AND abs:protein" --date_from 2024-01-01 --output_dir papers/
  python main.py download_papers --source pubmed --query "crispr[tiab] AND review[pt]" --email me@example.org
  python main.py download_papers --source pubmed --query asthma --date_from 2023-01-01 --date_to 2023-12-31 --no_pdf
  python main.py download_papers --query "large language models" --max_results 5 --no_pdf   # papers.json only
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=("arxiv", "pubmed"), default="arxiv", help="where to search")
    parser.add_argument("--query", default=None,
                        help='search terms: free text (words ANDed) or the API\'s own syntax ("ti:rag AND au:lewis" '
                             'for arXiv, "asthma[mh] AND 2023[dp]" for PubMed)')
    parser.add_argument("--categories", nargs="+", default=[], metavar="CAT",
                        help="arXiv categories (cs.CL cs.LG ...), ORed together and ANDed with --query")
    parser.add_argument("--date_from", default=None, help="earliest date, YYYY-MM-DD (arXiv: submitted; PubMed: "
                                                          "publication date)")
    parser.add_argument("--date_to", default=None, help="latest date, YYYY-MM-DD (inclusive)")
    parser.add_argument("--max_results", type=int, default=50, help="most papers to fetch (default 50)")
    parser.add_argument("--sort", choices=("relevance", "newest", "updated"), default="relevance",
                        help="result order (newest / updated: by submission / last update on arXiv; PubMed "
                             "sorts both by publication date)")
    parser.add_argument("--output_dir", default="papers", help="folder for the files and papers.json")
    parser.add_argument("--no_pdf", action="store_true",
                        help="metadata only: write papers.json, no PDFs (arXiv) or abstract texts (PubMed)")
    network = parser.add_argument_group("network")
    network.add_argument("--base_url", default=None,
                         help="API root instead of https://export.arxiv.org or https://eutils.ncbi.nlm.nih.gov "
                              "(a mirror or a local test server)")
    network.add_argument("--api_key", default=os.environ.get("NCBI_API_KEY"),
                         help="NCBI API key: 10 requests/s instead of 3 (default: $NCBI_API_KEY)")
    network.add_argument("--email", default=os.environ.get("NCBI_EMAIL"),
                         help="your email, sent to NCBI as they ask (default: $NCBI_EMAIL)")
    network.add_argument("--tool", default="minillm", help="tool name sent to NCBI")
    network.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a server")
    network.add_argument("--retries", type=int, default=4, help="retries after a 429/5xx or network failure")
    network.add_argument("--request_interval", type=float, default=None,
                         help="seconds between requests (default: the API's limit; shorter only with --base_url)")
    parser.add_argument("--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    from rag.downloads import DownloadConfig, DownloadError, download_papers

    config = DownloadConfig(
        source=args.source, query=args.query, categories=args.categories, date_from=args.date_from,
        date_to=args.date_to, max_results=args.max_results, output_dir=args.output_dir, base_url=args.base_url,
        api_key=args.api_key, email=args.email, tool=args.tool, no_pdf=args.no_pdf, timeout=args.timeout,
        retries=args.retries, request_interval=args.request_interval, sort=args.sort)
    try:
        summary = download_papers(config, progress=True)
    except DownloadError as exc:  # the search failed after every retry: not bad input, so exit 1
        print(f"download failed: {exc}", file=sys.stderr)
        return 1
    kind = "files" if not config.no_pdf else "entries"
    print(f"{summary.source}: {summary.total_found} hits; {len(summary.new)} new, {len(summary.existing)} already "
          f"there, {len(summary.failed)} failed ({kind}; {summary.requests} requests)")
    for paper_id, reason in summary.failed:
        print(f"  failed {paper_id}: {reason}")
    print(f"metadata: {summary.papers_file.resolve()}")
    if summary.failed:
        print("re-run the same command to retry the failed papers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # python scripts/download_papers.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("download_papers")
