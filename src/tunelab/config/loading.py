"""Reading a config: YAML (bounded, safe), dotted overrides, paths relative to the YAML file,
and every schema problem turned into one line of a single ConfigError."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunelab.config.schema import DATA_PATH_KEYS, RunConfig
from tunelab.errors import ConfigError
from tunelab.files import check_readable_file, content_problem
from tunelab.suggest import ALIASES, did_you_mean, short_list, short_path, short_repr, short_text

MAX_PROBLEMS = 10  # more than this and the rest are counted, not listed


Checks = Callable[[RunConfig], list[str]]


def build_config(
    raw: dict[str, Any], source: str | None = None, more_checks: Checks | None = None
) -> RunConfig:
    """Validate a plain dict into a RunConfig, collecting every problem into one ConfigError.

    `more_checks(config)` adds problems this package cannot see (the layers above pass the
    checks that need the plug-ins: `tunelab.workflows.check`); all are reported together.
    """
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err) for err in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"… and {len(errors) - MAX_PROBLEMS} more problems; fix these first.")
        raise ConfigError(problems, source) from None
    found = config.problems()
    if more_checks is not None:
        found += more_checks(config)
    if found:
        raise ConfigError(found, source)
    return config


def load_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    more_checks: Checks | None = None,
) -> RunConfig:
    """Read a YAML config (or start from `base`, or defaults, when path is None) and apply dotted overrides."""
    raw: dict[str, Any] = dict(base or {})
    source = None
    if path is not None:
        path = Path(path)
        source = short_path(path)
        raw = read_yaml(path)
        _resolve_data_paths(raw, path.parent)
    for override in overrides or []:
        apply_override(raw, override, source)
    return build_config(raw, source, more_checks)


MAX_YAML_BYTES = 1 << 20  # a run config is a few KB; anything near a MB is not one
MAX_YAML_NODES = 100_000  # scalars + collections after alias expansion (a config has ~200)


class YAMLLimitError(yaml.YAMLError):
    """A YAML document refused for its size, not its syntax (an alias bomb, a recursive alias)."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document whose aliases expand past MAX_YAML_NODES nodes.

    A "billion laughs" document is a few hundred bytes whose aliases nest lists of lists; the
    composed graph stays small (aliases share nodes) but anything that walks the value (pydantic,
    repr in an error message) walks all 10^9 of them. The expanded size is counted on the shared
    graph, each node once, before any Python object is built; a recursive alias is refused too.
    """

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            expanded_size(node, MAX_YAML_NODES)
        return node


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in `root` with every alias expanded; raises yaml.YAMLError past `limit` or on a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > limit:
                raise YAMLLimitError(
                    f"its aliases (*name) expand to more than {limit:,} values, far beyond any run config"
                )
            continue
        if key in on_path:
            raise YAMLLimitError("an alias (*name) refers to the collection that contains it")
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise YAMLLimitError("an alias (*name) refers to the collection that contains it")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str) -> Any:
    """yaml.safe_load with the alias bound; nesting too deep for the parser is a YAMLError too."""
    try:
        return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass: no python tags
    except RecursionError:
        raise YAMLLimitError("it nests too deeply for a run config") from None


def read_yaml(path: Path) -> dict[str, Any]:
    path = check_readable_file(
        path, "config file", "Check the path to the YAML config.", ConfigError, allow_empty=True
    )
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(
            f"{path} is {size:,} bytes; a run config is a few KB (limit {MAX_YAML_BYTES:,}). "
            "Point at the YAML config, not a data file."
        )
    raw = path.read_bytes()
    problem = content_problem(path, raw[:65536])
    if problem is None and not raw.startswith(b"\xef\xbb\xbf"):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            problem = f"line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}). Save the config as UTF-8."
    if problem is not None:
        raise ConfigError(problem, short_path(path))
    try:
        loaded = parse_yaml(raw.decode("utf-8-sig"))
    except YAMLLimitError as exc:
        raise ConfigError(
            f"refused: {exc}. Write the values out instead of through aliases.", short_path(path)
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"not valid YAML{where}: {short_text(reason, 120)}. Fix the syntax.", short_path(path)
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"the top level must be a mapping of sections; got {type(loaded).__name__}.",
            short_path(path),
        )
    return loaded


def apply_override(raw: dict[str, Any], override: str, source: str | None = None) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (numbers, bools, lists)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {short_repr(override, 60)} must look like section.key=value, e.g. train.lr=3e-5.",
            source,
        )
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"override {short_repr(override, 60)}: {short_repr(part, 40)} is a value, not a section.",
                source,
            )
        node = child
    try:
        value = parse_yaml(text) if text.strip() else None
    except YAMLLimitError as exc:
        raise ConfigError(f"override {short_repr(override, 60)}: refused: {exc}.", source) from None
    except yaml.YAMLError:
        raise ConfigError(
            f"override {short_repr(override, 60)}: the value is not valid YAML. "
            f"Quote it, e.g. {short_text(key.strip(), 40)}='\"...\"'.",
            source,
        ) from None
    if parts[0] == "data" and parts[-1] in DATA_PATH_KEYS and isinstance(value, str):
        value = _absolute(Path(value))
    node[parts[-1]] = value


def _absolute(path: Path) -> str:
    """The absolute path; as given when it cannot be resolved (a NUL byte, a name too long),
    so that validation reports it as a file not found rather than crashing here."""
    try:
        return str(path.expanduser().resolve())
    except (OSError, ValueError, RuntimeError):
        return str(path)


def _resolve_data_paths(raw: dict[str, Any], base: Path) -> None:
    model = raw.get("model")
    if (
        isinstance(model, dict)
        and isinstance(model.get("name"), str)
        and not model["name"].startswith("package:")
    ):
        local = Path(_absolute(base / model["name"]))
        try:
            beside = (local / "config.json").is_file()
        except (OSError, ValueError):
            beside = False
        if beside:  # a model directory next to the YAML, wherever we run from
            model["name"] = str(local)
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in DATA_PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            data[key] = _absolute(base / Path(value).expanduser())
    dataset = data.get("dataset")
    if isinstance(dataset, str) and dataset and not dataset.startswith(("/", "~")):
        local = Path(_absolute(base / dataset))
        try:
            beside = local.is_dir()
        except (OSError, ValueError):
            beside = False
        if beside:  # a dataset folder next to the YAML, wherever we run from; else a hub id
            data["dataset"] = str(local)


PROBLEM_CHARS = 170  # a problem line; with "error: config in <path ≤ 100>: " it stays under 300


def _describe(err: Any) -> str:
    """Turn one pydantic error into 'what is wrong; got X. What to do.' in at most PROBLEM_CHARS."""
    loc = ".".join(str(p) for p in err["loc"])
    loc = short_text(loc, 50)
    if err["type"] == "extra_forbidden":
        parent, _, name = loc.rpartition(".")
        siblings = _field_names(parent)
        hint = _unknown_key_hint(parent, name, siblings)
        head = f"unknown key '{loc}'.{hint} Known keys{' in ' + parent if parent else ''}: "
        limit = max(30, min(60 if hint else 120, PROBLEM_CHARS - len(head)))
        if len(", ".join(siblings)) > limit:  # too many to list: the most similar names first
            siblings = difflib.get_close_matches(name, siblings, n=len(siblings), cutoff=0)
        return f"{head}{short_list(siblings, limit)}."
    message = " ".join(str(err["msg"]).split())
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message = short_text(message, 80)
    default = _default_of(loc)
    fix = (
        f" Set {loc}, e.g. {short_text(default, 30)}."
        if default not in (None, "")
        else f" Set {loc}."
    )
    head = f"{loc}: {message[0].lower() + message[1:]}; got "
    room = max(20, PROBLEM_CHARS - len(head) - len(fix) - 1)
    return f"{head}{short_repr(err['input'], min(room, 80))}.{fix}"


def _unknown_key_hint(parent: str, name: str, siblings: list[str]) -> str:
    """' Did you mean …?' for an unknown key: another tool's name for a tunelab key
    (learning_rate → train.lr), a key of another section (train.max_length → data.max_length),
    else the closest sibling by spelling."""
    alias = ALIASES.get(name.lower().replace("-", "_"))
    if alias in siblings:
        return f" Did you mean '{parent + '.' if parent else ''}{alias}'?"
    elsewhere = [k for k in _all_keys() if k.rsplit(".", 1)[-1] in (name, alias)]
    if elsewhere and not any(k.rsplit(".", 1)[0] == parent for k in elsewhere):
        return f" Did you mean '{elsewhere[0]}'?"
    return did_you_mean(name, siblings)


def _all_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of the config schema, e.g. 'train.lr'."""
    keys: list[str] = []
    for field_name, field in (model or RunConfig).model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _all_keys(annotation, f"{prefix}{field_name}.")
        else:
            keys.append(f"{prefix}{field_name}")
    return keys


def _section_model(dotted: str) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in [p for p in dotted.split(".") if p]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _field_names(dotted: str) -> list[str]:
    model = _section_model(dotted)
    return list(model.model_fields) if model else []


def _default_of(dotted: str) -> Any:
    """The field's default, suggested as the fix (None when the default is a section)."""
    parent, _, name = dotted.rpartition(".")
    model = _section_model(parent)
    if model is None or name not in model.model_fields:
        return None
    field = model.model_fields[name]
    if field.default_factory is not None:
        return None
    return field.default
