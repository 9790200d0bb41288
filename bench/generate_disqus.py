"""A Disqus XML export of N posts, written as it is generated (flat memory), and the time and
peak memory of reading it with `DisqusSource` (decision 35).

    .venv/bin/python bench/generate_disqus.py --output /tmp/disqus-1m.xml          # 1,000,000
    .venv/bin/python bench/generate_disqus.py --output /tmp/d.xml --posts 20000 --seed 7
    .venv/bin/python bench/generate_disqus.py --parse /tmp/disqus-1m.xml           # read it
    .venv/bin/python bench/generate_disqus.py --convert /tmp/disqus-1m.xml  # µs per body

The export looks like Disqus's: categories, every thread (30% with an empty `<id/>`, 0.5%
deleted, 2% closed), then every post in time order across threads (not grouped by thread;
a few hot threads get most posts). About 70% of posts are top level, the rest reply to a
recent post of their thread, with chains (a reply to the thread's latest post) and a few
threads where a chain runs deep. About 2% of posts are deleted, 1% spam, 0.1% name a thread
that is not in the file and 0.1% a parent that is not. Bodies are HTML paragraphs of
realistic length (lognormal, median ~200 characters) with links, emphasis, line breaks,
entities, code and quotes. The same seed gives the same file.

`--parse` reads a file with `DisqusSource` in this process, counts threads, comments and
skips, and prints seconds, posts/s and the peak RSS (getrusage: the whole process's peak).
"""

import argparse
import json
import math
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "article",
    "podcast",
    "episode",
    "great",
    "point",
    "agree",
    "disagree",
    "thanks",
    "interesting",
    "server",
    "database",
    "python",
    "release",
    "version",
    "update",
    "question",
    "answer",
    "problem",
    "solution",
    "comment",
    "reply",
    "thread",
]
NAMES = [
    "Ann",
    "Bob",
    "Carol",
    "Dave",
    "Eve",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 18))]
    words[0] = words[0].capitalize()
    roll = rng.random()
    if roll < 0.05:
        i = rng.randrange(len(words))
        words[i] = (
            f'<a href="https://example.com/{words[i]}?a=1&amp;b=2" rel="nofollow">{words[i]}</a>'
        )
    elif roll < 0.10:
        i = rng.randrange(len(words))
        words[i] = f"<b>{words[i]}</b>"
    elif roll < 0.14:
        i = rng.randrange(len(words))
        words[i] = f"<i>{words[i]}</i>"
    elif roll < 0.16:
        words.append("&amp; 5 &lt; 6 *really*")
    elif roll < 0.17:
        words.append("<code>x = [1, 2]</code>")
    return " ".join(words) + rng.choice(".!?.")


def body(rng: random.Random) -> str:
    target = int(rng.lognormvariate(math.log(200), 0.8))
    paragraphs: list[str] = []
    size = 0
    while size < target or not paragraphs:
        lines = []
        for _ in range(rng.randint(1, 3)):
            line = " ".join(sentence(rng) for _ in range(rng.randint(1, 3)))
            lines.append(line)
            size += len(line)
        paragraphs.append("<br>".join(lines))
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    if rng.random() < 0.03:
        html = f"<blockquote><p>{sentence(rng)}</p></blockquote>" + html
    return html


def author(rng: random.Random, users: int) -> str:
    n = rng.randrange(users)
    name = f"{NAMES[n % len(NAMES)]} {n}"
    if n % 10 < 6:
        return (
            f"<author><email>user{n}@example.com</email><name>{name}</name>"
            f"<isAnonymous>false</isAnonymous><username>user-{n}</username></author>"
        )
    if n % 10 < 9:
        return (
            f"<author><email>guest{n}@example.org</email><name>{name}</name>"
            "<isAnonymous>true</isAnonymous></author>"
        )
    return f"<author><name>{name}</name><isAnonymous>true</isAnonymous></author>"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(path: Path, posts: int, threads: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2012, 1, 1, tzinfo=UTC)
    users = max(posts // 20, 10)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="http://disqus.com/api/schemas/1.0/disqus.xsd '
            'http://disqus.com/api/schemas/1.0/disqus-internals.xsd">\n'
            '  <category dsq:id="1"><forum>bench</forum><title>General</title>'
            "<isDefault>true</isDefault></category>\n"
        )
        for t in range(threads):
            created = start + timedelta(minutes=t * 5)
            identifier = "" if rng.random() < 0.3 else f"post-{t}"
            out.write(
                f'  <thread dsq:id="{100000 + t}">'
                + (f"<id>{identifier}</id>" if identifier else "<id/>")
                + f'<forum>bench</forum><category dsq:id="1"/>'
                f"<link>https://blog.example.com/{created:%Y/%m}/post-{t}/</link>"
                f"<title>{escape(' '.join(rng.choice(WORDS) for _ in range(6)))}</title><message/>"
                f"<createdAt>{stamp(created)}</createdAt>{author(rng, users)}"
                f"<isClosed>{'true' if rng.random() < 0.02 else 'false'}</isClosed>"
                f"<isDeleted>{'true' if rng.random() < 0.005 else 'false'}</isDeleted>"
                "</thread>\n"
            )
        recent: dict[int, list[int]] = {}
        deep = {t for t in range(threads) if rng.random() < 0.002}
        moment = start + timedelta(days=30)
        chunk: list[str] = []
        for p in range(posts):
            moment += timedelta(seconds=rng.randint(1, 120))
            # A few hot threads: a power law over threads.
            t = min(int(threads * rng.random() ** 3), threads - 1)
            post_id = 10_000_000 + p
            thread_ref = 100000 + t
            if rng.random() < 0.001:
                thread_ref = 900_000_000 + p  # not in the file
            parent = None
            earlier = recent.get(t)
            roll = rng.random()
            if earlier:
                if t in deep and roll < 0.9:
                    parent = earlier[-1]
                elif roll < 0.10:
                    parent = earlier[-1]  # a chain
                elif roll < 0.30:
                    parent = rng.choice(earlier)
            if rng.random() < 0.001:
                parent = 5_000_000_000 + p  # not in the file
            spam = rng.random() < 0.01
            deleted = not spam and rng.random() < 0.02
            message = "" if deleted else f"<![CDATA[{body(rng)}]]>"
            chunk.append(
                f'  <post dsq:id="{post_id}"><id/><message>{message}</message>'
                f"<createdAt>{stamp(moment)}</createdAt>"
                f"<isDeleted>{'true' if deleted else 'false'}</isDeleted>"
                f"<isSpam>{'true' if spam else 'false'}</isSpam>{author(rng, users)}"
                f"<ipAddress>192.0.2.{p % 250}</ipAddress>"
                f'<thread dsq:id="{thread_ref}"/>'
                + (f'<parent dsq:id="{parent}"/>' if parent is not None else "")
                + "</post>\n"
            )
            if not spam:
                kept = recent.setdefault(t, [])
                kept.append(post_id)
                if len(kept) > 20:
                    del kept[0]
            if len(chunk) >= 1000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))
        out.write("</disqus>\n")


def parse(path: Path) -> dict[str, object]:
    from services.worker.imports.disqus import DisqusSource
    from services.worker.imports.model import SkippedThread

    started = time.perf_counter()
    cpu_started = time.process_time()
    threads = comments = skipped_comments = 0
    skipped_threads: dict[str, int] = {}
    deepest = 0
    with DisqusSource(path) as source:
        for thread in source.threads():
            if isinstance(thread, SkippedThread):
                skipped_threads[thread.reason] = skipped_threads.get(thread.reason, 0) + 1
                continue
            threads += 1
            comments += len(thread.comments)
            skipped_comments += len(thread.skipped)
            deepest = max(deepest, len(thread.comments))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    posts = comments + skipped_comments
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 1),
        "posts_per_second": round(posts / seconds),
        "cpu_seconds_parser": round(cpu, 1),
        "cpu_seconds_workers": round(children.ru_utime + children.ru_stime, 1),
        "peak_rss_mb_worst_worker": round(children.ru_maxrss / 1024, 1),
        "threads": threads,
        "comments": comments,
        "skipped_comments": skipped_comments,
        "skipped_threads": skipped_threads,
        "largest_thread": deepest,
        "peak_rss_mb": round(peak_kib / 1024, 1),
    }


def convert(path: Path, count: int = 20_000) -> dict[str, object]:
    """CPU microseconds per body of `html_to_markdown` (nh3 + tree + markdown) on the first
    `count` bodies of an export, and of nh3 alone, so the two can be told apart."""
    import re

    import nh3

    from services.worker.imports import html_markdown

    with path.open(encoding="utf-8") as stream:
        head = stream.read(64 << 20)
    bodies = re.findall(r"<!\[CDATA\[(.*?)\]\]>", head, re.DOTALL)[:count]
    started = time.process_time()
    for message in bodies:
        html_markdown.html_to_markdown(message)
    whole = (time.process_time() - started) / len(bodies)
    started = time.process_time()
    for message in bodies:
        nh3.clean(message, tags=html_markdown._TAGS, attributes=html_markdown._ATTRIBUTES)
    alone = (time.process_time() - started) / len(bodies)
    return {
        "bodies": len(bodies),
        "mean_chars": sum(map(len, bodies)) // len(bodies),
        "us_per_body": round(whole * 1e6, 1),
        "us_per_body_nh3_only": round(alone * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="write an export here")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=None, help="default: posts / 50")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--parse", type=Path, help="read this export and report")
    parser.add_argument("--convert", type=Path, help="time body conversion on this export")
    args = parser.parse_args()
    if args.output:
        started = time.perf_counter()
        generate(args.output, args.posts, args.threads or max(args.posts // 50, 1), args.seed)
        print(
            json.dumps(
                {
                    "generated": str(args.output),
                    "posts": args.posts,
                    "seconds": round(time.perf_counter() - started, 1),
                    "file_mb": round(args.output.stat().st_size / 1e6, 1),
                }
            )
        )
    if args.parse:
        print(json.dumps(parse(args.parse)))
    if args.convert:
        print(json.dumps(convert(args.convert)))
    if not (args.output or args.parse or args.convert):
        parser.error("give --output, --parse or --convert")


if __name__ == "__main__":
    main()
