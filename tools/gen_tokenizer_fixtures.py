#!/usr/bin/env python3
"""Offline generator of the tokenizer test fixtures in tests/data/tokenizer/ (never used at run time).

Two steps, with synclap's own BPE trainer in between:

  1. python3 tools/gen_tokenizer_fixtures.py corpus
       writes corpus.txt: deterministic audio-caption-like sentences (seeded), plus tricky lines.
  2. train a vocabulary with synclap's trainer on corpus.txt (vocab_size 800, min_frequency 2), writing
     trained/vocab.json + trained/merges.txt; the test BpeTrainer.ReproducesCommittedVocabulary checks that
     the trainer still gives exactly those files.
  3. python3 tools/gen_tokenizer_fixtures.py expected [--hf-repo BARE_GIT_DIR] [--hf-tag v4.43.4]
       runs HuggingFace's slow RobertaTokenizer (pure Python, needs the `regex` module: Debian python3-regex)
       from transformers v4.43.4 on trained/ and on handmade/ and writes expected_trained.json,
       expected_handmade.json (ids as the CLAP processor calls it: padding="max_length", max_length=77,
       truncation=True; tokens; decode) and pretokenize.json (regex.findall of the GPT-2 pattern on random
       strings).

transformers is imported from a `git archive` of the tag without installing it: huggingface_hub is replaced
by a do-nothing stand-in (only tokenization code runs), the package __init__ (dependency checks) is
skipped, and AddedToken gets the content hash and __setstate__ it lacks when `tokenizers` is not
installed.
"""
import argparse
import importlib.abc
import importlib.machinery
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# ---------------------------------------------------------------------------------------------- corpus

SUBJECTS = ["a dog", "two dogs", "a small bird", "birds", "a crowd", "a man", "a woman", "children",
            "a car", "an old truck", "a train", "the wind", "heavy rain", "light rain", "thunder", "a piano",
            "an acoustic guitar", "a violin", "drums", "a cat", "a baby", "an engine", "a helicopter",
            "ocean waves", "a stream", "footsteps", "a door", "a clock", "a bell", "church bells", "a siren",
            "a synthesizer", "an electric guitar", "a choir", "a saxophone", "a trumpet", "a cello", "frogs",
            "crickets", "a rooster", "a horse", "a motorcycle", "an airplane", "a crowd of people"]
VERBS = ["barking", "chirping", "singing", "talking", "laughing", "passing by", "honking", "blowing",
         "falling", "rumbling", "playing", "meowing", "crying", "idling", "flying overhead", "crashing",
         "flowing", "walking", "creaking", "ticking", "ringing", "wailing", "humming", "whistling",
         "cheering", "splashing", "buzzing", "revving", "clapping", "knocking"]
PLACES = ["in the distance", "nearby", "in a large hall", "outdoors", "in a small room", "on a busy street",
          "in the forest", "at night", "in the morning", "on a beach", "in a park", "indoors", "underwater",
          "in a cave", "through a window", "on the radio", "in a stadium", "in the rain", "far away"]
EXTRAS = ["", "", "", " with echo", " with background noise", " while people talk", " and then stops",
          " repeatedly", " loudly", " softly", " 3 times", " for 10 seconds", " at 120 bpm"]
TRICKY = [
    "A café in Paris: espresso machine hissing, naïve chatter, a façade of noise.",
    "Ångström-level hiss; crème brûlée spoon clinks.",
    "Jazz 🎷🎶 with a 🎸 solo and 🔥 crowd 👏👏",
    "Don't stop the music! I'M SURE it's loud; we'll see, they're here, I've heard, she'd go.",
    "1,000 drums at 120.5 bpm in 2024 -- 3rd take, #7",
    "東京の駅のアナウンス and 北京 traffic",
    "Tabs\tand\tnewlines\nbetween   many    spaces  ",
    "   leading and trailing spaces   ",
    "Ünïcödé ÄÖÜ äöü ß ẞ ñ ç ø å",
    "Привет мир, звук дождя",
    "مرحبا صوت المطر",
    "कुत्ता भौंकता है",
    "E=mc² and ½ cup, Ⅻ o'clock, ①②③",
]


def make_corpus(seed=1234, n=600):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        s = "%s %s %s%s" % (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(PLACES), rng.choice(EXTRAS))
        r = rng.random()
        if r < 0.3:
            s = s[0].upper() + s[1:]
        if r < 0.15:
            s += "."
        lines.append(s)
    lines.extend(TRICKY * 2)
    rng.shuffle(lines)
    return lines


# ---------------------------------------------------------------------------------------------- HF import

class _Anything:
    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name.isupper():
            value = os.path.join(tempfile.gettempdir(), "hf_stub_home")
        elif name[:1].isupper():
            value = type(name, (Exception,) if name.endswith("Error") else (object,), {})
        else:
            value = _Anything()
        setattr(self, name, value)
        return value


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "huggingface_hub" or name.startswith("huggingface_hub."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        m.__version__ = "0.23.2"
        return m

    def exec_module(self, module):
        pass


def import_roberta(hf_repo, tag):
    tmp = tempfile.mkdtemp(prefix="hf_src_")
    archive = subprocess.run(["git", "-C", hf_repo, "archive", tag, "src/transformers"], check=True,
                             stdout=subprocess.PIPE).stdout
    tar_path = os.path.join(tmp, "src.tar")
    with open(tar_path, "wb") as f:
        f.write(archive)
    with tarfile.open(tar_path) as t:
        t.extractall(tmp)
    sys.meta_path.insert(0, _StubFinder())
    pkg = types.ModuleType("transformers")
    pkg.__path__ = [os.path.join(tmp, "src", "transformers")]
    pkg.__version__ = tag.lstrip("v")
    sys.modules["transformers"] = pkg
    import transformers.tokenization_utils_base as base  # noqa: E402
    # Without the `tokenizers` package v4.43.4 defines AddedToken as an eq=True dataclass, which makes it
    # unhashable, and PreTrainedTokenizer.__init__ then fails on `token not in dict`. Hash by content, as
    # tokenizers' own AddedToken does; the tokens are then registered by _add_tokens as usual.
    if base.AddedToken.__hash__ is None:
        base.AddedToken.__hash__ = lambda self: hash(self.content)
    if not hasattr(base.AddedToken, "__setstate__"):
        base.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)
    from transformers.models.roberta.tokenization_roberta import RobertaTokenizer  # noqa: E402
    return RobertaTokenizer


# ---------------------------------------------------------------------------------------------- cases

def long_caption():
    words = ["a", "dog", "barking", "in", "the", "distance,", "rain", "falling", "on", "café", "roofs", "🎸"]
    out, i = [], 0
    while len(" ".join(out)) < 10000:
        out.append(words[i % len(words)])
        i += 1
    return " ".join(out)[:10000]


def cases():
    """(name, raw bytes). Invalid UTF-8 is given to HF as bytes.decode('utf-8', 'replace')."""
    texts = [
        ("simple", "a dog barking in the distance"),
        ("merge_order", "abab ababab abc aaa aaaa xyz bcabc"),
        ("capital", "A Dog Barking"),
        ("accents", "café naïve façade Ångström crème brûlée"),
        ("decomposed_accent", "cafe\u0301 e\u0301te\u0301"),
        ("emoji", "jazz 🎷🎶 with a 🎸 solo 🔥👏👏"),
        ("emoji_zwj_flag", "family 👨‍👩‍👧 and flag 🇫🇷"),
        ("digits", "1,000 drums at 120.5 bpm in 2024, 3rd take #7"),
        ("superscripts_fractions", "E=mc² ½ Ⅻ ①②③ ٣"),
        ("contractions", "don't I'M we'll she's they're I've she'd 'tis"),
        ("contractions_upper", "DON'T WE'LL SHE'S"),
        ("contraction_curly", "don’t"),
        ("apostrophe_runs", "'''s ''re rock'n'roll"),
        ("spaces_run", "a    b     c"),
        ("leading_trailing", "   leading and trailing   "),
        ("newlines_tabs", "tabs\tand\tnewlines\nline two\r\nend\n\n"),
        ("space_newline_mix", "a \n b\t \tc \n"),
        ("only_spaces", "     "),
        ("single_space", " "),
        ("empty", ""),
        ("nbsp_and_friends", "a\u00a0b\u3000c\u2028d\u0085e"),
        ("info_separators", "a\x1cb\x1fc"),
        ("cjk", "東京の駅のアナウンス and 北京 traffic"),
        ("cyrillic_arabic", "Привет мир مرحبا"),
        ("devanagari", "कुत्ता भौंकता है"),
        ("punctuation", "Wow!!! Really?! (yes) -- [no] ... \"quoted\" {braces} @home #tag $5 %50 ^_^ ~~"),
        ("special_tokens_inline", "hello <s> world</s> and <pad> <unk>x"),
        ("mask_lstrip", "a dog   <mask> barks\t<mask>"),
        ("angle_not_special", "<s >< /s> <mask<s>>"),
        ("mixed_scripts_no_space", "abc123def٣٤٥ghi"),
        ("long_word", "a" * 300),
        ("long_caption", long_caption()),
        ("long_single_word", ("dogbarking" * 1000)),
        ("control_chars", "a\x00b\x07c\x7fd"),
    ]
    out = [(name, t.encode("utf-8")) for name, t in texts]
    out += [
        ("invalid_lone_continuation", b"dog \x80 bark"),
        ("invalid_truncated", b"caf\xc3"),
        ("invalid_overlong", b"a\xc0\xafb"),
        ("invalid_surrogate", b"x\xed\xa0\x80y"),
        ("invalid_mixed", b"\xff\xfe ok \xe2\x82 \xf0\x9f\x8e euro \xe2\x82\xac"),
        ("invalid_too_large", b"\xf4\x90\x80\x80!"),
    ]
    return out


def run_expected(tok_cls, vocab_dir, names_and_bytes):
    tok = tok_cls(os.path.join(vocab_dir, "vocab.json"), os.path.join(vocab_dir, "merges.txt"))
    rows = []
    for name, raw in names_and_bytes:
        text = raw.decode("utf-8", errors="replace")
        enc = tok(text, padding="max_length", max_length=77, truncation=True)
        tokens = tok.tokenize(text)
        plain_ids = tok.convert_tokens_to_ids(tokens)
        rows.append({
            "name": name,
            "hex": raw.hex(),
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "tokens": tokens if len(tokens) <= 400 else None,
            "num_tokens": len(tokens),
            "token_ids_head": plain_ids[:400],
            "decoded": tok.decode(plain_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
        })
    return {"generator": "HF transformers v4.43.4 RobertaTokenizer (slow), tools/gen_tokenizer_fixtures.py",
            "call": "tok(text, padding='max_length', max_length=77, truncation=True)",
            "cases": rows}


def random_strings(seed=7, n=250):
    rng = random.Random(seed)
    alphabet = (list("abcXYZéÅßж日") + list("0123٣²½") + [" "] * 6 + ["\t", "\n", "\r", "\u00a0", "\u3000"] +
                list("'''''sstrevmld") + list(".,!?-#\"()") + ["🎸", "👏", "\u0301", "\u200d", "\x1c"])
    out = []
    for _ in range(n):
        k = rng.randint(0, 24)
        out.append("".join(rng.choice(alphabet) for _ in range(k)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["corpus", "expected"])
    ap.add_argument("--hf-repo", default="/work/.mirror/johnnyboystar22+hugging-face/repo")
    ap.add_argument("--hf-tag", default="v4.43.4")
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    if args.step == "corpus":
        with open(os.path.join(DATA, "corpus.txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(make_corpus()) + "\n")
        print("wrote corpus.txt")
        return
    import regex
    pat = regex.compile(GPT2_PATTERN)
    tok_cls = import_roberta(args.hf_repo, args.hf_tag)
    for which in ["trained", "handmade"]:
        data = run_expected(tok_cls, os.path.join(DATA, which), cases())
        with open(os.path.join(DATA, "expected_%s.json" % which), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=True, indent=1)
            f.write("\n")
    pre = [{"hex": s.encode("utf-8").hex(), "pieces": [p.encode("utf-8").hex() for p in pat.findall(s)]}
           for s in random_strings()]
    with open(os.path.join(DATA, "pretokenize.json"), "w", encoding="ascii") as f:
        json.dump({"generator": "regex %s findall of the GPT-2 pattern" % regex.__version__, "pattern": GPT2_PATTERN,
                   "cases": pre}, f, indent=0)
        f.write("\n")
    print("wrote expected_trained.json, expected_handmade.json, pretokenize.json")


if __name__ == "__main__":
    main()
