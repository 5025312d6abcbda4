"""seq2seq on a tiny T5 and on bert2bert; generation settings; text metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_cli import assert_one_line_error, run
from transformers import AutoModelForSeq2SeqLM, Seq2SeqTrainer

import tunelab
from tunelab.config import GenerationConfig
from tunelab.errors import DataError
from tunelab.evaluation.text_metrics import text_metrics
from tunelab.inference.generation import hf_generation_config
from tunelab.runs import load_generator, load_run_model
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.train import prepare_training


def seq2seq_config(tmp_path: Path, model_dir: Path, train_file: Path, **train) -> dict:
    return {
        "data": {"train_file": str(train_file), "max_length": 32},
        "model": {"name": str(model_dir)},
        "task": {"type": "seq2seq", "max_target_length": 16},
        "train": {
            "epochs": 6,
            "batch_size": 16,
            "lr": 5e-3,
            "precision": "fp32",
            "seed": 3,
            "eval_on_start": False,
            **train,
        },
        "eval": {"generate_rows": 8},
        "output": {"dir": str(tmp_path / "runs"), "name": "s2s"},
    }


def test_t5_run_learns_writes_generations_and_reloads(
    tmp_path: Path, tiny_t5_dir: Path, opposites_jsonl: Path
) -> None:
    result = tunelab.train(build_config(seq2seq_config(tmp_path, tiny_t5_dir, opposites_jsonl)))
    test = result.metrics["test"]
    assert test["perplexity_after"] < 0.3 * test["perplexity_before"]
    generation = test["generation"]
    assert generation["examples"] == 8
    assert set(generation) >= {"rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf"}
    # The base model's generations are scored too: the baseline the fine-tuned model must beat.
    assert generation["rougeL"] > test["generation_before"]["rougeL"]
    assert (result.run_dir / "predictions" / "test_generations_before.jsonl").is_file()
    table = pd.read_json(result.run_dir / "predictions" / "test_generations.jsonl", lines=True)
    assert table["prediction"].tolist()[0] == generation["example"]["prediction"]
    # The saved model generates what the run reported (same code path, greedy decoding).
    generator = load_generator(result.run_dir)
    assert generator.generate([table["prompt"][0]]) == [table["prediction"][0]]
    generated = run("generate", str(result.run_dir), "--prompt", "opposite of good")
    assert generated.returncode == 0 and generated.stdout.strip(), generated.stderr


def test_labels_are_padded_with_minus_100_and_targets_keep_eos(
    tmp_path: Path, tiny_t5_dir: Path, opposites_jsonl: Path
) -> None:
    session = prepare_training(build_config(seq2seq_config(tmp_path, tiny_t5_dir, opposites_jsonl)))
    features = [session.encoded["train"][i] for i in range(4)]
    batch = session.trainer.data_collator(
        [{k: v for k, v in f.items() if k != "length"} for f in features]
    )
    lengths = [len(f["labels"]) for f in features]
    for row, n in enumerate(lengths):
        assert batch["labels"][row, n - 1] == session.tokenizer.eos_token_id
        assert (batch["labels"][row, n:] == -100).all()


def test_generation_metric_as_best_metric_switches_to_predict_with_generate(
    tmp_path: Path, tiny_t5_dir: Path, opposites_jsonl: Path
) -> None:
    raw = seq2seq_config(tmp_path, tiny_t5_dir, opposites_jsonl, best_metric="rougeL", epochs=2)
    session = prepare_training(build_config(raw))
    assert isinstance(session.trainer, Seq2SeqTrainer)
    assert session.trainer.args.predict_with_generate
    session.trainer.train()
    curve = [e for e in session.trainer.state.log_history if "eval_rougeL" in e]
    assert len(curve) == 2 and all(0 <= e["eval_rougeL"] <= 100 for e in curve)


def test_bert2bert_from_an_encoder_trains_with_lora_and_reloads(
    tmp_path: Path, tiny_bert_dir: Path, toy_rows
) -> None:
    rows = toy_rows(160)
    path = tmp_path / "pairs.csv"
    pd.DataFrame(
        {"source": rows["text"], "target": rows["label"].map({"pos": "good", "neg": "bad"})}
    ).to_csv(path, index=False)
    raw = seq2seq_config(tmp_path, tiny_bert_dir, path, epochs=3)
    raw["method"] = {"name": "lora", "lora": {"r": 4}}
    result = tunelab.train(build_config(raw))
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    model = load_run_model(result.run_dir).eval()
    assert type(model.get_base_model()).__name__ == "EncoderDecoderModel"
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        first = model(input_ids=ids, labels=torch.tensor([[5, 3]])).loss
        again = (
            load_run_model(result.run_dir).eval()(input_ids=ids, labels=torch.tensor([[5, 3]])).loss
        )
    torch.testing.assert_close(first, again)
    merged_dir = tmp_path / "merged"
    from tunelab.workflows.export import export_run

    export_run(result.run_dir, merged_dir, "merged")
    merged = AutoModelForSeq2SeqLM.from_pretrained(merged_dir / "model").eval()
    with torch.no_grad():
        torch.testing.assert_close(
            merged(input_ids=ids, labels=torch.tensor([[5, 3]])).loss, first, atol=1e-4, rtol=1e-4
        )


def test_missing_or_empty_columns_are_one_line(tmp_path: Path, tiny_t5_dir: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"question": ["a", "b"], "answer": ["x", ""]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="rows have an empty 'answer'"):
        tunelab.train(build_config(seq2seq_config(tmp_path, tiny_t5_dir, path)))
    named = tmp_path / "bad.jsonl"
    pd.DataFrame({"words": ["a"], "other": ["b"]}).to_json(named, orient="records", lines=True)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(seq2seq_config(tmp_path, tiny_t5_dir, named)))
    assert_one_line_error(run("train", str(config)), "cannot tell which column holds the source")


def test_generation_settings_map_onto_transformers() -> None:
    from conftest import word_tokenizer

    tokenizer = word_tokenizer()
    greedy = hf_generation_config(
        GenerationConfig(num_beams=4, no_repeat_ngram_size=3), tokenizer, 20
    )
    assert greedy.max_new_tokens == 20 and greedy.num_beams == 4 and not greedy.do_sample
    assert greedy.no_repeat_ngram_size == 3 and greedy.eos_token_id == tokenizer.eos_token_id
    sampled = hf_generation_config(
        GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=5),
        tokenizer,
        20,
    )
    assert sampled.do_sample and sampled.temperature == 0.7 and sampled.top_p == 0.9
    assert sampled.max_new_tokens == 5


def test_text_metrics_score_known_cases() -> None:
    perfect = text_metrics(["the cat sat", "a dog"], [["the cat sat"], ["a dog"]])
    assert perfect["rouge1"] == perfect["rougeL"] == pytest.approx(100)
    assert perfect["exact_match"] == 100 and perfect["chrf"] == pytest.approx(100)
    wrong = text_metrics(["completely different words"], [["the cat sat"]])
    assert wrong["rouge1"] == 0 and wrong["exact_match"] == 0
    half = text_metrics(["the cat"], [["the cat sat on"]])
    assert half["rouge1"] == pytest.approx(100 * 2 * (1.0 * 0.5) / 1.5)  # P=1, R=0.5
    # The best of several references counts; answers are extracted by the pattern.
    multi = text_metrics(["dog"], [["cat", "dog"]])
    assert multi["rouge1"] == pytest.approx(100)
    gsm = text_metrics(["so it is 72.\n#### 72"], [["48+24 = 72\n#### 72"]], r"####\s*(.+)")
    assert gsm["exact_match"] == 100
    code = text_metrics(["df [ ' a ' ]. sum ( )"], [["df['a'].sum()"]], ignore_space=True)
    assert code["exact_match"] == 100
    assert text_metrics(["df [ ' a ' ]"], [["df['a']"]])["exact_match"] == 0
