r"""The character-level Penn Treebank corpus: files, vocabulary, integer streams, batches.

File format (``ptb.char.train.txt``, ``ptb.char.valid.txt``, ``ptb.char.test.txt``): one
sentence per line, its characters separated by spaces, ``_`` marking a word boundary. Every
whitespace-separated token is one *symbol*; the end of every line adds the symbol
:data:`END_OF_LINE` (``<eos>``), so a split of ``L`` lines holding ``c`` tokens is a stream
of ``c + L`` symbols. The vocabulary is the training file's symbols in the order of their
first occurrence (``<eos>`` included); the validation and test files must use only those.

Batching (as in the word-level PyTorch language-model example the published script follows):
a stream of ``N`` symbols is cut to ``R·B`` symbols, ``R = ⌊N/B⌋``, and laid out as ``B``
parallel sub-streams, the columns of an ``(R, B)`` array (column ``b`` holds symbols
``b·R … (b+1)·R − 1``). Truncated backpropagation through time walks down the rows in
segments of at most ``bptt`` steps: the segment starting at row ``i`` has length
``L = min(bptt, R − 1 − i)``, inputs ``rows i … i+L−1`` and targets ``rows i+1 … i+L``;
together the segments predict every row but the first, ``(R − 1)·B`` symbols.

Reference: Mikolov et al., "Subword language modeling with neural networks" (2012), whose
``simple-examples`` archive distributes these files; Marcus et al., "Building a large
annotated corpus of English: the Penn Treebank" (1993).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nrmkit.core.errors import ConfigError

#: the splits, in the order the files are read.
SPLITS = ("train", "valid", "test")
#: the symbol that ends every line.
END_OF_LINE = "<eos>"
#: where users get the files (said in every message about missing ones).
HOW_TO_GET = ("get the character-level Penn Treebank files ptb.char.train.txt, "
              "ptb.char.valid.txt and ptb.char.test.txt (folder data/ of Mikolov's "
              "simple-examples.tgz) and give their folder")
#: file names: the standard ones, then the ``train.txt``/``valid.txt``/``test.txt`` of a
#: ``pennchar`` folder (the layout of the published script).
LAYOUTS = ({split: f"ptb.char.{split}.txt" for split in SPLITS},
           {split: f"{split}.txt" for split in SPLITS})


@dataclass(frozen=True)
class CharCorpus:
    """The three splits as integer symbol streams over one vocabulary.

    Attributes:
        vocabulary: the symbols; symbol ``k`` is encoded as ``k``.
        train, valid, test: ``(N,)`` int64 streams.
        files: the file read for each split.
    """

    vocabulary: tuple[str, ...]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    files: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.vocabulary)


def corpus_files(data_dir: str | Path | None) -> dict[str, Path]:
    """The files of the three splits in ``data_dir`` (the first complete layout).

    Raises:
        ConfigError: naming ``--data-dir``: not given, not a folder, or files missing.
    """
    if data_dir is None:
        raise ConfigError("--data-dir", f"not given: {HOW_TO_GET} with --data-dir")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise ConfigError("--data-dir", f"{folder} is not a folder; {HOW_TO_GET}")
    for layout in LAYOUTS:
        files = {split: folder / name for split, name in layout.items()}
        if all(path.is_file() for path in files.values()):
            return files
    missing = [name for name in LAYOUTS[0].values() if not (folder / name).is_file()]
    raise ConfigError("--data-dir", f"{folder} lacks {', '.join(missing)}; {HOW_TO_GET}")


def read_symbols(path: Path) -> list[str]:
    """The symbols of one file: each line's tokens followed by :data:`END_OF_LINE`.

    Raises:
        ConfigError: naming ``--data-dir``: unreadable, not UTF-8 text, or no symbol
            other than line ends.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("--data-dir", f"{path} is not UTF-8 text (a character-level PTB "
                                        "file is)") from None
    except OSError as error:
        raise ConfigError("--data-dir", f"cannot read {path}: {error.strerror}") from None
    symbols: list[str] = []
    for line in text.splitlines():
        symbols.extend(line.split())
        symbols.append(END_OF_LINE)
    if symbols.count(END_OF_LINE) == len(symbols):
        raise ConfigError("--data-dir", f"{path} holds no characters (empty file); "
                                        "expected one sentence per line, characters "
                                        "separated by spaces")
    return symbols


def encode(symbols: list[str], index: dict[str, int], path: Path) -> np.ndarray:
    """``symbols`` as int64 codes of ``index``.

    Raises:
        ConfigError: naming ``--data-dir`` and the first line holding a symbol that the
            training file never uses.
    """
    unknown = set(dict.fromkeys(symbols)).difference(index)
    if unknown:
        first = next(position for position, symbol in enumerate(symbols) if symbol in unknown)
        line = symbols[:first].count(END_OF_LINE) + 1
        raise ConfigError("--data-dir", f"{path} line {line} has the symbol "
                          f"{symbols[first]!r}, which the training file never uses "
                          f"({len(unknown)} such symbol{'s' * (len(unknown) > 1)}); the "
                          "splits must share the training vocabulary")
    return np.fromiter(map(index.__getitem__, symbols), dtype=np.int64, count=len(symbols))


def load_corpus(data_dir: str | Path | None) -> CharCorpus:
    """Read the three files of ``data_dir``; vocabulary from the training file.

    Raises:
        ConfigError: naming ``--data-dir`` (see :func:`corpus_files`, :func:`read_symbols`,
            :func:`encode`).
    """
    files = corpus_files(data_dir)
    symbols = {split: read_symbols(path) for split, path in files.items()}
    vocabulary = tuple(dict.fromkeys(symbols["train"]))
    index = {symbol: code for code, symbol in enumerate(vocabulary)}
    streams = {split: encode(symbols[split], index, files[split]) for split in SPLITS}
    return CharCorpus(vocabulary=vocabulary, **streams,
                      files={split: str(path) for split, path in files.items()})


def batchify(stream: np.ndarray, batch: int, *, split: str = "train",
             option: str = "--batch") -> np.ndarray:
    """``(R, B)`` array of ``B = batch`` parallel sub-streams (see the module docstring).

    Raises:
        ConfigError: naming ``option`` when the stream has fewer than ``2·batch`` symbols
            (a sub-stream needs an input and a target).
    """
    rows = len(stream) // batch
    if rows < 2:
        raise ConfigError(option, f"the {split} split has {len(stream)} symbols, too few "
                          f"for {batch} parallel streams of at least 2 symbols: at most "
                          f"{max(len(stream) // 2, 1)}")
    return np.ascontiguousarray(stream[:rows * batch].reshape(batch, rows).T)


def segments(rows: int, bptt: int) -> list[tuple[int, int]]:
    """``(start, length)`` of the truncated-BPTT segments of ``rows`` rows."""
    return [(start, min(bptt, rows - 1 - start)) for start in range(0, rows - 1, bptt)]
