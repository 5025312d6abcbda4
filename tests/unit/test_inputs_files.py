"""One error path for every file a command reads or writes (issue 15, findings 6 and 8).

`predict --input`, `data inspect`, `evaluate --data` and `train` share one check
(tunelab.data.load.check_data_file): each bad file gets one line, exit code 2, and advice
that fits what the file really is (UTF-16 is not told to convert from Latin-1).
"""

from __future__ import annotations

import errno
import gzip
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from inputs_cli import assert_one_line, invoke, train_tiny_run
from tunelab.errors import OutputError
from tunelab.files import check_writable_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("inputs-run"), tiny_bert_dir)


def fake_xlsx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return path


BAD_FILES = {
    # name: (writer, fragments every command's line must hold, fragments it must not hold)
    "directory": (lambda p: p.mkdir(), ["is a directory"], ["not found"]),
    "utf16_bom": (
        lambda p: p.write_bytes("text,label\nhello,pos\n".encode("utf-16")),
        ["UTF-16", "iconv -f UTF-16 -t UTF-8"],
        ["latin1", "LATIN1"],
    ),
    "utf16_no_bom": (
        lambda p: p.write_bytes("text,label\nhello there,pos\nbye now,neg\n".encode("utf-16-le")),
        ["UTF-16LE", "iconv -f UTF-16LE"],
        ["LATIN1"],
    ),
    "latin1": (
        lambda p: p.write_bytes(b"text,label\nfine,pos\ncaf\xe9 au lait,neg\n"),
        ["line 3 is not valid UTF-8", "0xe9", "Latin-1", "iconv -f LATIN1 -t UTF-8"],
        [],
    ),
    "cp1252": (
        lambda p: p.write_bytes(b"text,label\n\x93quoted\x94 words,pos\nplain,neg\n"),
        ["line 2 is not valid UTF-8", "Windows-1252", "iconv -f CP1252"],
        [],
    ),
    "xlsx_renamed": (fake_xlsx, ["Excel workbook", "CSV"], ["UTF-8 (e.g. iconv", "LATIN1"]),
    "gzip_renamed": (
        lambda p: p.write_bytes(gzip.compress(b"text,label\nhello,pos\n")),
        ["gzip", "gunzip"],
        [],
    ),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 4), ["NUL bytes", "binary"], []),
    "header_only": (lambda p: p.write_text("text,label\n"), ["no data rows"], []),
    "empty": (lambda p: p.write_text(""), ["the file is empty"], []),
}


def make(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.csv"
    BAD_FILES[name][0](path)
    return path


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_predict_inspect_and_evaluate_give_the_same_one_line(
    run_dir: Path, tmp_path: Path, name: str
) -> None:
    path = make(tmp_path, name)
    _, wanted, unwanted = BAD_FILES[name]
    lines = [
        assert_one_line(invoke("predict", run_dir, "--input", path), *wanted),
        assert_one_line(invoke("data", "inspect", path, "--out", tmp_path / "r"), *wanted),
        assert_one_line(invoke("evaluate", run_dir, "--data", path), *wanted),
    ]
    for line in lines:
        for fragment in unwanted:
            assert fragment not in line, line
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_a_missing_input_is_not_found_and_a_directory_is_a_directory(
    run_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.csv"
    assert_one_line(invoke("predict", run_dir, "--input", missing), "not found", "nope.csv")
    assert_one_line(invoke("data", "inspect", missing), "file not found", "nope.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    line = assert_one_line(invoke("config", "validate", folder), "is a directory")
    assert "not found" not in line


def test_a_utf8_bom_is_read_like_plain_utf8(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "excel-utf8.csv"
    path.write_bytes(b"\xef\xbb\xbftext\nsuperb fun film\nboring dull plot\n")
    done = invoke("predict", run_dir, "--input", path)
    assert done.kind == "ok", done.stderr
    assert '"text": "superb fun film"' in done.stdout  # the header is 'text', not '\ufefftext'
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "love it"}\n{"text": "hate it"}\n')
    assert invoke("predict", run_dir, "--input", jsonl).kind == "ok"


def test_a_csv_named_parquet_says_what_it_is(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_text("text\nhello\n")
    assert_one_line(invoke("predict", run_dir, "--input", path), "not Parquet", "extension")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1; got 0"),
        (["--chunk-rows", "0"], "--chunk-rows must be at least 1; got 0"),
        (["--output", "{tmp}/out.xlsx"], "write predictions as .csv or .jsonl"),
        (["--output", "{tmp}"], "is a directory"),
        (["--output", "{tmp}/in.csv"], "is the input file"),
        (["--output", "{tmp}/in.csv/out.csv"], "is a file, not a directory"),
    ],
)
def test_bad_predict_options_are_one_line_before_the_model_loads(
    run_dir: Path, tmp_path: Path, flags: list[str], fragment: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\nlove it\n")
    before = source.read_bytes()
    args = [f.format(tmp=tmp_path) for f in flags]
    assert_one_line(invoke("predict", run_dir, "--input", source, *args), fragment)
    assert source.read_bytes() == before  # the input is never replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # nothing else written


def test_empty_text_is_refused_like_train_and_serve_refuse_it(run_dir: Path) -> None:
    assert_one_line(invoke("predict", run_dir, "--text", ""), "--text 1 of 1 is empty")
    assert_one_line(
        invoke("predict", run_dir, "--text", "good", "--text", "   "), "--text 2 of 2 is empty"
    )


def test_a_header_nobody_recognises_is_not_predicted_as_a_text(
    run_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "comments.csv"
    path.write_text("comment_body,id\ngood film,1\nbad film,2\n")
    line = assert_one_line(
        invoke("predict", run_dir, "--input", path), "'comment_body', 'id'", "--text-column"
    )
    assert "data.text_column" not in line  # predict cannot set a config key
    named = invoke("predict", run_dir, "--input", path, "--text-column", "comment_body")
    assert named.kind == "ok", named.stderr
    assert '"comment_body": "good film"' in named.stdout
    assert "comment_body" not in named.stdout.split("\n")[0].split('"comment_body":')[1]
    headerless = invoke("predict", run_dir, "--input", path, "--text-column", "col0")
    assert headerless.kind == "ok" and headerless.stdout.count("\n") == 3  # all three lines


def test_an_input_label_column_is_kept_beside_the_prediction(run_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "labelled.csv"
    pd.DataFrame({"text": ["love it", "hate it"], "label": ["gold-a", "gold-b"]}).to_csv(
        source, index=False
    )
    target = tmp_path / "out.csv"
    assert invoke("predict", run_dir, "--input", source, "--output", target).kind == "ok"
    back = pd.read_csv(target)
    assert back["input_label"].tolist() == ["gold-a", "gold-b"]
    assert set(back["label"]) <= {"pos", "neg"}


def test_evaluate_data_advises_its_own_flags_and_takes_them(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    pd.DataFrame({"review": ["love it", "hate it"], "stars": ["pos", "neg"]}).to_csv(
        path, index=False
    )
    line = assert_one_line(invoke("evaluate", run_dir, "--data", path), "--label-column")
    assert "data." not in line
    wrong = assert_one_line(
        invoke("evaluate", run_dir, "--data", path, "--text-column", "body"), "'body' not found"
    )
    assert "--text-column" in wrong and "data.text_column" not in wrong
    done = invoke(
        "evaluate", run_dir, "--data", path, "--text-column", "review", "--label-column", "stars"
    )
    assert done.kind == "ok", done.stderr
    assert "accuracy" in done.stdout


def _read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores chmod, so a read-only mount is simulated where the write check probes it."""
    import tunelab.files

    def refuse(*_: object, **__: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tunelab.files.tempfile, "mkstemp", refuse)


def test_read_only_output_places_are_one_line(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\nlove it\n")
    _read_only(monkeypatch)
    assert_one_line(
        invoke("data", "inspect", source, "--out", tmp_path / "report"),
        "cannot write --out",
        "read-only",
    )
    assert_one_line(
        invoke("predict", run_dir, "--input", source, "--output", tmp_path / "o.csv"),
        "cannot write --output",
        "read-only",
    )
    with pytest.raises(OutputError, match=r"cannot write output.dir .*read-only"):
        check_writable_dir(tmp_path / "runs", "output.dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_chmod_read_only_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_writable_dir(locked / "runs", "output.dir")
    finally:
        locked.chmod(0o755)


def test_the_writable_check_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "runs"
    assert check_writable_dir(target, "output.dir") == target
    assert list(tmp_path.iterdir()) == []  # neither the directories nor a probe file are left


def test_a_full_disk_while_writing_predictions_leaves_nothing(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunelab.data.stream as stream

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "love it\n" * 50)
    real_fdopen = os.fdopen

    def full_disk(fd: int, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(stream.os, "fdopen", full_disk)
    target = tmp_path / "out.csv"
    assert_one_line(
        invoke("predict", run_dir, "--input", source, "--output", target),
        "no space left",
        "out.csv",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
