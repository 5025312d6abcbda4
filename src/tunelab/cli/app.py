"""The `tunelab` command: each subcommand parses its arguments, calls one workflow and renders
the result (tables are `render`). Workflows are imported inside the commands, so `tunelab --help`
loads no torch.

User errors (TunelabError) print as one line on stderr with exit code 2; bugs keep their traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tunelab.cli.render import (
    print_comparison,
    print_evaluation,
    print_folds,
    print_search,
    print_spread,
    print_summary,
)
from tunelab.console import console, errors
from tunelab.errors import ConfigError, TunelabError, WorkerError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="tunelab",
    help="Fine-tune pre-trained language models end to end, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show or check a run config.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Look at data before training on it.", no_args_is_help=True)
app.add_typer(data_app, name="data")

Overrides = Annotated[
    list[str] | None, typer.Argument(help="dotted overrides, e.g. train.lr=3e-5 data.max_length=64")
]


def user_errors(command: F) -> F:
    """Turn a TunelabError into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except WorkerError as exc:  # the launcher: one line for the rank that failed
            errors.print(f"error: {exc}", markup=False)
            raise typer.Exit(code=2 if exc.user_error else 1) from None
        except TunelabError as exc:
            from tunelab.training.distributed import report_failure

            if getattr(exc, "decided_by_rank_0", False):  # rank 0 reports this one
                raise typer.Exit(code=0) from None

            # a worker of a multi-process run hands its line to the launcher, which names the rank
            if not report_failure(f"error: {exc}"):
                errors.print(f"error: {exc}", markup=False)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def train(
    config: Annotated[Path, typer.Argument(help="YAML run config")],
    overrides: Overrides = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the interrupted run of the same output.name")
    ] = False,
    seeds: Annotated[
        int, typer.Option("--seeds", help="repeat with seeds seed..seed+N-1 and report mean ± std")
    ] = 1,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc", help="training processes on this machine (torchrun; DDP by default)"
        ),
    ] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", help="machines in a multi-node run")] = 1,
    node_rank: Annotated[
        int, typer.Option("--node-rank", help="this machine's rank, 0..nnodes-1")
    ] = 0,
    master_addr: Annotated[
        str, typer.Option("--master-addr", help="multi-node: address of the rank-0 machine")
    ] = "127.0.0.1",
    master_port: Annotated[
        int, typer.Option("--master-port", help="multi-node: a free TCP port on the rank-0 machine")
    ] = 29500,
) -> None:
    """Fine-tune as CONFIG says; prints baseline vs fine-tuned metrics and the run directory."""
    from tunelab.workflows.check import load_checked as load_config
    from tunelab.workflows.launch import Launch

    extra = ["train.resume=true"] if resume else []
    cfg = load_config(config, [*(overrides or []), *extra])
    launch = Launch(nproc, nnodes, node_rank, master_addr, master_port)
    if launch.needed:
        from tunelab.workflows.launch import launch_workers

        if seeds > 1:
            raise ConfigError("--seeds and --nproc/--nnodes do not combine. Use one of the two.")
        command = ["train", str(config), *(overrides or []), *(["--resume"] if resume else [])]
        launch_workers(launch, command, cfg)
        return
    from tunelab.workflows.train import train as run_training

    if seeds > 1:
        from tunelab.workflows.repeats import repeat_seeds

        print_spread(repeat_seeds(cfg, seeds)["test"], f"test metrics over {seeds} seeds")
        return
    result = run_training(cfg)
    if result.metrics:  # empty on ranks other than 0 of a multi-process run
        print_summary(result.metrics, result.wall_seconds, result.run_dir)


@app.command()
@user_errors
def cv(
    config: Annotated[Path, typer.Argument(help="YAML run config (classification)")],
    overrides: Overrides = None,
    folds: Annotated[int, typer.Option("--folds", help="number of stratified folds")] = 5,
) -> None:
    """k-fold cross-validation: per-fold metrics, mean ± std, out-of-fold predictions."""
    from tunelab.workflows.check import load_checked as load_config
    from tunelab.workflows.repeats import cross_validate

    summary = cross_validate(load_config(config, overrides), folds)
    print_folds(summary, folds)
    print_spread(summary["validation"], "validation folds")
    print_spread(summary["test"], "the fixed test split, per fold model")
    console.print(f"out-of-fold predictions: {summary['out_of_fold_file']}")


@app.command()
@user_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="directory of a finished run")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="labelled file to score instead of the run's test split"),
    ] = None,
    text_column: Annotated[
        str | None,
        typer.Option("--text-column", help="--data: the column with the texts (auto-detected)"),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option("--label-column", help="--data: the column with the labels (auto-detected)"),
    ] = None,
) -> None:
    """Score a trained run on its test split or on another labelled file."""
    from tunelab.workflows.evaluate import evaluate as run_evaluation

    report = run_evaluation(run_dir, data, text_column, label_column)
    print_evaluation(report, run_dir)


@app.command()
@user_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="directory of a finished run")],
    input: Annotated[
        Path | None, typer.Option("--input", help="CSV/TSV/JSON/JSONL/Parquet with a text column")
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="a text to label; repeat for several")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="write .csv or .jsonl here (default: print JSONL)"),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="column with the texts (auto-detected)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="texts per forward pass")] = 64,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="rows read and written at a time (bounds memory)")
    ] = 10_000,
    load_in: Annotated[
        str | None,
        typer.Option("--load-in", help="4bit or 8bit: bitsandbytes weights on a CUDA GPU"),
    ] = None,
) -> None:
    """Label texts with a trained run: label and class probabilities for each.

    A file is streamed (--chunk-rows rows at a time, with a progress bar), so its size is not
    bounded by memory; --output is written to a temporary name and renamed when complete.
    """
    from tunelab.workflows.predict import predict as run_prediction
    from tunelab.workflows.predict import predict_file

    if input is not None and text:
        raise ConfigError("give either --text or --input, not both.")
    if input is None:
        if not text:
            raise ConfigError("give --text (repeatable) or --input FILE.")
        frame = run_prediction(
            run_dir, texts=text, output_file=output, batch_size=batch_size, load_in=load_in
        )
        if output is None:
            from tunelab.io import finite  # strict JSON: a NaN is null, never the invalid NaN

            for record in frame.to_dict(orient="records"):
                print(
                    json.dumps(finite(record), ensure_ascii=False, default=float, allow_nan=False)
                )
        else:
            console.print(f"wrote {len(frame)} predictions to {output}")
        return
    from rich.progress import Progress

    from tunelab.data.stream import check_predict_request, count_rows

    check_predict_request(input, output, batch_size, chunk_rows)  # before the model loads
    stderr = Console(stderr=True)
    with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("predicting", total=count_rows(input))
        done = predict_file(
            run_dir,
            input,
            output,
            text_column=text_column,
            batch_size=batch_size,
            chunk_rows=chunk_rows,
            progress=lambda rows: bar.update(task, completed=rows),
            load_in=load_in,
        )
    if output is not None:
        console.print(f"wrote {done} predictions to {output}")


@app.command()
@user_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="directory of a finished run")],
    out: Annotated[Path, typer.Option("--out", help="new directory for the export")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto: merged for LoRA/IA3, else hf; hf: the model as trained; merged: adapters folded into the base; onnx: an ONNX Runtime graph",
        ),
    ] = "auto",
    merge: Annotated[bool, typer.Option("--merge", help="same as --format merged")] = False,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="int8: dynamic int8 Linear weights")
    ] = None,
    prune: Annotated[
        float | None,
        typer.Option("--prune", help="zero this share of body Linear weights (global magnitude)"),
    ] = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure/--no-measure", help="size, speed and test accuracy against the run"
        ),
    ] = True,
    recover_epochs: Annotated[
        float | None,
        typer.Option(
            "--recover-epochs",
            help="after --prune, fine-tune this many epochs on the run's data, pruned weights held at zero",
        ),
    ] = None,
) -> None:
    """Write a standalone copy of a run's model, checked against the run, with export.json and model_card.md."""
    from tunelab.workflows.export import export_run

    if merge and format not in ("auto", "merged"):
        raise ConfigError(f"--merge means --format merged; it cannot go with --format {format}.")
    record = export_run(
        run_dir, out, "merged" if merge else format, quantize, prune, measure, recover_epochs
    )
    console.print(
        f"exported {record['format']}{' + ' + record['quantize'] if record['quantize'] else ''} to {out}; "
        f"largest output difference from the run before compression: "
        f"{record['max_abs_difference']:.2e} (tolerance {record['tolerance']:g}); "
        f"checks in {out / 'export.json'}, card in {out / 'model_card.md'}"
    )


@app.command()
@user_errors
def generate(
    run_dir: Annotated[
        Path, typer.Argument(help="directory of a finished seq2seq or instruction run")
    ],
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", help="a prompt; repeat for several")
    ] = None,
    input: Annotated[
        Path | None, typer.Option("--input", help="CSV/TSV/JSON/JSONL/Parquet with a prompt column")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="write .csv or .jsonl here (default: print)")
    ] = None,
    column: Annotated[
        str | None, typer.Option("--column", help="the prompt column of --input (auto-detected)")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="tokens to generate (default: the run's setting)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per generate call")] = 8,
) -> None:
    """Generate with a trained generative run, prompts laid out as in training."""
    from tunelab.workflows.generate import generate as run_generation

    frame = run_generation(run_dir, prompt, input, output, column, max_new_tokens, batch_size)
    if output is not None:
        console.print(f"wrote {len(frame)} generations to {output}")
    elif prompt:
        for text in frame["generated"]:
            print(text)
    else:
        from tunelab.io import finite

        for record in frame.to_dict(orient="records"):
            print(json.dumps(finite(record), ensure_ascii=False, default=str, allow_nan=False))


@app.command()
@user_errors
def serve(
    run_dir: Annotated[Path, typer.Argument(help="directory of a finished run, or an export")],
    host: Annotated[
        str, typer.Option(help="address to listen on; 0.0.0.0 opens it to the network")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="TUNELAB_API_KEY",
            help="require this key (Authorization: Bearer KEY, or X-API-Key) on all but /health",
        ),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option(help="texts per model call across requests; 1 = one request at a time")
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="how long a batch waits for more requests (ms)")
    ] = 5,
    queue_size: Annotated[
        int, typer.Option(help="requests that may wait for the model; more get 503")
    ] = 256,
    max_items: Annotated[int, typer.Option(help="texts or prompts per request; more get 413")] = 64,
    max_chars: Annotated[int, typer.Option(help="characters per text; longer gets 413")] = 10_000,
    load_in: Annotated[
        str | None,
        typer.Option("--load-in", help="4bit or 8bit: bitsandbytes weights on a CUDA GPU"),
    ] = None,
    header_timeout: Annotated[
        float, typer.Option(help="seconds for a request's head (line and headers); slower gets 408")
    ] = 10,
    body_timeout: Annotated[
        float, typer.Option(help="seconds for a request's body after its head; slower gets 408")
    ] = 30,
    limit_concurrency: Annotated[
        int, typer.Option(help="open connections or running requests; requests beyond get 503")
    ] = 1000,
) -> None:
    """Serve a run over HTTP: /v1/predict, or OpenAI-style /v1/completions and /v1/chat/completions."""
    from tunelab.serve.app import run_server

    run_server(
        run_dir,
        host=host,
        port=port,
        api_key=api_key,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        max_items=max_items,
        max_chars=max_chars,
        load_in=load_in,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        limit_concurrency=limit_concurrency,
    )


@app.command()
@user_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="directory of a run")],
) -> None:
    """Write RUN_DIR/report.html: run card, data, curves, baselines, errors, forgetting (also written after each run)."""
    from tunelab.report.html import write_report

    console.print(f"wrote {write_report(run_dir)}")


@app.command()
@user_errors
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="two or more run directories")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("compare.html"),
) -> None:
    """One table of headline numbers and overlaid validation-loss curves across runs."""
    from tunelab.report.compare import COLUMNS, write_comparison

    rows, path = write_comparison(run_dirs, out)
    print_comparison(rows, COLUMNS)
    console.print(f"wrote {path}")


@app.command()
@user_errors
def search(
    config: Annotated[Path, typer.Argument(help="YAML run config with a search: section")],
    overrides: Overrides = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the study of the same output.name")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", help="trial processes sharing the study (2-core box: 1)")
    ] = 1,
) -> None:
    """Hyperparameter search (grid / random / Bayesian with pruning); leaderboard and best.yaml."""
    from tunelab.workflows.check import load_checked as load_config
    from tunelab.workflows.search import run_search

    summary = run_search(load_config(config, overrides), resume=resume, workers=workers)
    print_search(summary)
    console.print(f"report: {summary['report']}")


@config_app.command("show")
@user_errors
def config_show(
    config: Annotated[Path, typer.Argument(help="YAML run config")], overrides: Overrides = None
) -> None:
    """Print the resolved config, every default included, each with the reason for it."""
    from tunelab.config import dump_yaml
    from tunelab.workflows.check import load_checked as load_config

    print(dump_yaml(load_config(config, overrides)), end="")


@config_app.command("validate")
@user_errors
def config_validate(
    config: Annotated[Path, typer.Argument(help="YAML run config")], overrides: Overrides = None
) -> None:
    """Check a config and report every problem at once (exit code 2 if any)."""
    from tunelab.workflows.check import load_checked as load_config

    load_config(config, overrides)
    console.print(f"{config}: valid")


@data_app.command("inspect")
@user_errors
def data_inspect(
    target: Annotated[
        Path,
        typer.Argument(help="a YAML run config, or one data file (CSV/TSV/JSON/JSONL/Parquet)"),
    ],
    overrides: Overrides = None,
    out: Annotated[
        Path, typer.Option("--out", help="directory for data_report.json and data_report.html")
    ] = Path("data_report"),
) -> None:
    """Rows, labels, duplicates, conflicts, leakage, lengths and truncation, before any training."""
    from tunelab.data.inspect import format_report, write_report
    from tunelab.files import check_writable_dir
    from tunelab.workflows.check import load_checked as load_config
    from tunelab.workflows.inspect import inspect_data

    check_writable_dir(out, "--out")  # refused before the data is read, not after
    if target.suffix.lower() in (".yaml", ".yml"):
        cfg = load_config(target, overrides)
    else:  # the file path is taken as is, never parsed as a YAML value
        cfg = load_config(
            None, overrides, {"data": {"train_file": str(target.expanduser().resolve())}}
        )
    report = inspect_data(cfg)
    print(format_report(report))
    json_path, html_path = write_report(report, out)
    console.print(f"wrote {json_path} and {html_path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
