"""The ``ptb_task`` workflow as users call it, on a small corpus in the character-level PTB
format: bits per character against exact cases, the file format and batching, the cells,
exact resume, and one-line errors naming the option."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nrmkit.core.errors import ConfigError
from nrmkit.core.registry import WORKFLOWS
from nrmkit.datasets import ptb
from nrmkit.nn.language import CharModelSpec, build_char_model
from nrmkit.training.language import bits_per_character, evaluate_language_model

WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "its", "bed")
TINY = ["--nhid", 12, "--emsize", 8, "--batch", 4, "--eval_batch", 2, "--bptt", 16,
        "--lr", "3e-3", "--quiet"]


def sentence(k: int) -> str:
    """A deterministic sentence in the PTB character format (``_`` between words)."""
    words = [WORDS[(7 * k + j) % len(WORDS)] for j in range(3 + k % 4)]
    return " " + " _ ".join(" ".join(word) for word in words) + " \n"


def write_corpus(folder, lines=(40, 10, 10), names=("train", "valid", "test"),
                 prefix="ptb.char."):
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for name, count in zip(names, lines, strict=True):
        (folder / f"{prefix}{name}.txt").write_text(
            "".join(sentence(k) for k in range(start, start + count)))
        start += count
    return folder


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "ptb")


def invoke(args):
    return CliRunner().invoke(WORKFLOWS.get("ptb_task"), [str(a) for a in args])


def results(path):
    return json.loads((path / "results.json").read_text())


def test_gamma2_rnn_learns_below_the_uniform_rate(corpus, tmp_path, one_thread):
    out = tmp_path / "run"
    done = invoke(["--data-dir", corpus, "--net-type", "RNN", "--nonlin", "gamma2",
                   "--epochs", 1, *TINY, "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    vocabulary = summary["data"]["vocabulary"]
    # the 14 letters of WORDS, "_" and "<eos>"
    assert set(vocabulary) == set("".join(WORDS)) | {"_", "<eos>"}
    assert len(vocabulary) == 16 and vocabulary[-1] != "<eos>" and "<eos>" in vocabulary
    assert summary["uniform_bpc"] == pytest.approx(math.log2(16))
    for key in ("validation_bpc", "test_bpc", "train_bpc"):
        assert math.isfinite(summary[key]) and 0 < summary[key] < math.log2(16), key
    assert summary["test_bpc"] == pytest.approx(summary["test_loss"] / math.log(2))
    assert summary["epochs"] == 1 and len(summary["history"]) == 1
    assert summary["model"]["nonlin"] == "gamma2"
    assert (out / "model.pt").exists() and (out / "checkpoints" / "last.pt").exists()
    assert (out / "figures" / "learning_curves.png").stat().st_size > 10_000
    assert (out / "figures" / "learning_curves.pdf").exists()
    from nrmkit.training.language import load_char_model

    model, loaded = load_char_model(out)
    assert loaded == tuple(vocabulary)
    test = torch.as_tensor(ptb.batchify(ptb.load_corpus(corpus).test, 2))
    rescored = evaluate_language_model(model, test, bptt=16)   # the saved model's own score
    assert rescored["bpc"] == pytest.approx(summary["test_bpc"], rel=1e-6)
    rows = summary["data"]["rows"]["test"]
    assert rows == summary["data"]["symbols"]["test"] // 2


def _uniform_and_unigram_check(dtype):
    stream = np.array([0, 1, 2, 1, 1, 3, 0, 2, 1, 1, 3, 2, 0, 1, 2, 3, 3, 1, 0, 2, 1])
    data = torch.as_tensor(ptb.batchify(stream, 3))
    spec = CharModelSpec(net_type="RNN", nonlin="tanh", vocabulary_size=4, embedding_size=3,
                         hidden_size=5)
    model = build_char_model(spec, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        model.decoder.weight.zero_()
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    scores = evaluate_language_model(model, data.long(), bptt=3)
    assert scores["count"] == (7 - 1) * 3
    assert scores["bpc"] == pytest.approx(2.0, rel=tolerance)   # log2 V, V = 4
    q = np.array([0.1, 0.4, 0.3, 0.2])
    with torch.no_grad():
        model.decoder.bias.copy_(torch.as_tensor(np.log(q)))
    targets = ptb.batchify(stream, 3)[1:].ravel()               # every row but the first
    hand = -np.mean(np.log2(q[targets]))
    scores = evaluate_language_model(model, data.long(), bptt=3)
    assert scores["bpc"] == pytest.approx(hand, rel=tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bits_per_character_of_uniform_and_unigram_predictors(dtype):
    """A zero decoder predicts 1/V for every symbol: exactly log2 V bits; a decoder bias of
    log q gives the cross-entropy −mean log2 q(c) over the predicted symbols by hand."""
    assert bits_per_character(math.log(2)) == 1.0
    _uniform_and_unigram_check(dtype)


def test_file_format_vocabulary_and_batching(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ptb.char.train.txt").write_text(" a b _ c \n b a \n")
    (folder / "ptb.char.valid.txt").write_text(" c _ a \n")
    (folder / "ptb.char.test.txt").write_text("b\n\n")
    corpus = ptb.load_corpus(folder)
    assert corpus.vocabulary == ("a", "b", "_", "c", "<eos>")   # first occurrence in train
    np.testing.assert_array_equal(corpus.train, [0, 1, 2, 3, 4, 1, 0, 4])
    np.testing.assert_array_equal(corpus.valid, [3, 2, 0, 4])
    np.testing.assert_array_equal(corpus.test, [1, 4, 4])       # an empty line is one <eos>
    np.testing.assert_array_equal(ptb.batchify(np.arange(23), 4),
                                  np.arange(20).reshape(4, 5).T)
    spans = ptb.segments(5, 2)
    assert spans == [(0, 2), (2, 2)]
    predicted = [row for start, length in spans for row in range(start + 1, start + 1 + length)]
    assert predicted == [1, 2, 3, 4]                            # every row but the first, once
    assert ptb.segments(6, 2) == [(0, 2), (2, 2), (4, 1)]
    # the layout of the published script (pennchar/train.txt …) is read as well
    legacy = write_corpus(tmp_path / "pennchar", prefix="")
    assert ptb.load_corpus(legacy).size == 16


@pytest.mark.parametrize("net_type", ["LSTM", "GRU", "ANRU"])
def test_other_cells_train_one_short_epoch(net_type, corpus, tmp_path, one_thread):
    out = tmp_path / net_type
    done = invoke(["--data-dir", corpus, "--net-type", net_type, "--epochs", 1,
                   *TINY, "--nhid", 6, "--output-dir", out])
    assert done.exit_code == 0, done.output
    summary = results(out)
    assert summary["model"]["net_type"] == net_type
    assert math.isfinite(summary["test_bpc"]) and summary["test_bpc"] < summary["uniform_bpc"]


def test_resume_equals_uninterrupted(corpus, tmp_path, one_thread):
    args = ["--data-dir", corpus, *TINY, "--save-freq", 1]
    whole = invoke([*args, "--epochs", 2, "--output-dir", tmp_path / "whole"])
    assert whole.exit_code == 0, whole.output
    first = invoke([*args, "--epochs", 1, "--output-dir", tmp_path / "split"])
    assert first.exit_code == 0, first.output
    resumed = invoke([*args, "--epochs", 2, "--output-dir", tmp_path / "split", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a, b = results(tmp_path / "whole"), results(tmp_path / "split")
    strip = [{k: v for k, v in entry.items() if k != "seconds"} for entry in a["history"]]
    assert strip == [{k: v for k, v in entry.items() if k != "seconds"}
                     for entry in b["history"]]
    assert a["test_bpc"] == b["test_bpc"] and a["validation_bpc"] == b["validation_bpc"]
    changed = invoke([*args, "--epochs", 2, "--lr", "1e-3", "--output-dir",
                      tmp_path / "split", "--resume"])
    assert changed.exit_code == 2 and "--lr" in changed.output


def _one_line_error(done, option):
    assert done.exit_code == 2, done.output
    message = done.output.strip().splitlines()
    assert len(message) == 1 and option in message[0], done.output
    return message[0]


def test_missing_data_is_one_line_naming_data_dir(tmp_path, corpus):
    message = _one_line_error(invoke(["--epochs", 1]), "--data-dir")
    assert "ptb.char.train.txt" in message and "simple-examples" in message
    _one_line_error(invoke(["--data-dir", tmp_path / "nowhere"]), "--data-dir")
    (corpus / "ptb.char.test.txt").unlink()
    message = _one_line_error(invoke(["--data-dir", corpus]), "--data-dir")
    assert "lacks ptb.char.test.txt;" in message


@pytest.mark.parametrize("damage", ["empty", "unknown", "binary"])
def test_malformed_files_are_one_line_naming_data_dir(damage, corpus, tmp_path):
    target = corpus / ("ptb.char.train.txt" if damage == "empty" else "ptb.char.valid.txt")
    if damage == "empty":
        target.write_text("\n\n")
    elif damage == "unknown":
        target.write_text(" a _ c a t \n q u i t \n")
    else:
        target.write_bytes(b"\xff\xfe\x00 a b\n")
    message = _one_line_error(invoke(["--data-dir", corpus, *TINY, "--epochs", 1,
                                      "--output-dir", tmp_path / "out"]), "--data-dir")
    assert target.name in message
    if damage == "unknown":
        assert "line 2" in message and "'q'" in message


def test_split_too_short_for_the_batch_names_the_option(corpus, tmp_path):
    _one_line_error(invoke(["--data-dir", corpus, *TINY, "--batch", 5000, "--epochs", 1,
                            "--output-dir", tmp_path / "a"]), "--batch")
    _one_line_error(invoke(["--data-dir", corpus, *TINY, "--eval_batch", 5000, "--epochs", 1,
                            "--output-dir", tmp_path / "b"]), "--eval_batch")


def test_config_refuses_bad_values(corpus):
    from nrmkit.experiments.sequences.ptb_task import PtbConfig

    with pytest.raises(ConfigError, match="--bptt"):
        PtbConfig(data_dir=str(corpus), bptt=0)
    with pytest.raises(ConfigError, match="--iinit"):
        PtbConfig(data_dir=str(corpus), iinit="henaff")
