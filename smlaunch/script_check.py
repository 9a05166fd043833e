"""Findings about an own script (``entry_point:``) that need its files: SRC001-SRC006.

    script_findings(spec)   # [] without an entry_point section

SRC001 the script or its folder is missing. SRC002 an argument we send is not one the script's parser defines (read
statically from its ``add_argument("--name", ...)`` calls): a prefix of one it defines is read as that one by
argparse (an error), an unknown one aborts ``parse_args`` (an error) or is dropped by ``parse_known_args`` (a
warning). SRC003 the script imports a package that neither its requirements.txt, its folder nor the image provides
(when known: :data:`NOT_IN_IMAGES`), or SMP v1 under ``engine: torch``. SRC004 requirements.txt under network
isolation. SRC005 a symlink leaves the folder. SRC006 a file too large to upload.
:func:`smlaunch.validation.validate` adds these to the rulebook's (pure) findings.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from smlaunch import arguments as args_mod
from smlaunch.source_tree import MAX_FILE_BYTES, Manifest, SourceTooLarge, human_bytes, scan
from smlaunch.spec.findings import Finding
from smlaunch.spec.models import JobSpec

NOT_IN_IMAGES = {
    # import name -> pip package: not in SageMaker's PyTorch training images (the SMP v1 DLCs and the PyTorch 2.x
    # DLCs), so a script importing it needs it in requirements.txt
    "transformers": "transformers",
    "datasets": "datasets",
    "accelerate": "accelerate",
    "tokenizers": "tokenizers",
    "sentencepiece": "sentencepiece",
    "deepspeed": "deepspeed",
    "peft": "peft",
    "evaluate": "evaluate",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "torchnet": "torchnet",
    "humanize": "humanize",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "tiktoken": "tiktoken",
}


def source_dir(spec: JobSpec) -> Path:
    """``entry_point.source_dir`` as a directory: relative paths from the job file's folder (else the cwd)."""
    assert spec.entry_point is not None
    path = Path(spec.entry_point.source_dir).expanduser()
    if not path.is_absolute():
        named = spec.source is not None and spec.source.name not in ("<dict>", "<stdin>", "<spec>")
        path = (Path(spec.source.name).parent if named else Path.cwd()) / path
    try:
        return path.resolve()
    except OSError:  # a loop of links, an unreadable parent: the findings say so when they read it
        return path.absolute()


@dataclass(frozen=True)
class Parser:
    """What a script's argparse accepts, read from its source."""

    options: frozenset[str]
    """Every ``--name`` its ``add_argument`` calls define (without the dashes)."""
    known_args: bool
    """True when it parses with ``parse_known_args`` (unknown options are dropped, not fatal)."""
    abbrev: bool
    """False when the parser is built with ``allow_abbrev=False``."""

    def reads_as(self, name: str) -> list[str]:
        """The options argparse would take ``--name`` for: itself, or every option it is a prefix of."""
        if name in self.options:
            return [name]
        return sorted(o for o in self.options if o.startswith(name)) if self.abbrev else []


def read_parser(script: Path) -> Parser | None:
    """The script's argparse options, or None when it defines none with literal names (nothing to check)."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    options: set[str] = set()
    known = abbrev_off = False
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                    options.add(arg.value[2:])
        elif node.func.attr == "parse_known_args":
            known = True
        elif node.func.attr == "ArgumentParser":
            abbrev_off |= any(k.arg == "allow_abbrev" and _false(k.value) for k in node.keywords)
    return Parser(frozenset(options), known, not abbrev_off) if options else None


def _false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def script_findings(spec: JobSpec) -> list[Finding]:
    """SRC001-SRC006 for the spec's own script; [] without ``entry_point``."""
    if spec.entry_point is None:
        return []
    try:
        return _script_findings(spec)
    except OSError as exc:  # unreadable folder, a name the filesystem refuses, a loop of links
        reason = exc.strerror or str(exc)
        return [
            _missing("entry_point.source_dir", f"source_dir {spec.entry_point.source_dir} cannot be read: {reason}")
        ]
    except SourceTooLarge as exc:
        return [
            Finding(
                "SRC001",
                "error",
                "entry_point.source_dir",
                str(exc),
                "set entry_point.source_dir to the folder of the script and the code it imports",
            )
        ]


def _script_findings(spec: JobSpec) -> list[Finding]:
    root = source_dir(spec)
    script = root / spec.entry_point.script  # type: ignore[union-attr]
    if not root.is_dir():
        return [_missing("entry_point.source_dir", f"source_dir {root} is not a directory")]
    if not script.is_file():
        return [_missing("entry_point.script", f"script {spec.entry_point.script} is not in {root}")]  # type: ignore[union-attr]
    manifest = scan(root)
    found = [*_argument_findings(spec, script), *_import_findings(spec, manifest), *_upload_findings(manifest)]
    if (root / "requirements.txt").is_file() and spec.sagemaker.enable_network_isolation:
        found.append(
            Finding(
                "SRC004",
                "warning",
                "sagemaker.enable_network_isolation",
                "source_dir has a requirements.txt, which the container pip-installs from PyPI at start-up; "
                "network isolation blocks that, so the job fails before training",
                "set sagemaker.enable_network_isolation: false (or bake the packages into sagemaker.image_uri)",
            )
        )
    return found


def _missing(field: str, message: str) -> Finding:
    return Finding(
        "SRC001",
        "error",
        field,
        message,
        f"set {field} to the path of your training script's "
        + ("folder" if field.endswith("source_dir") else "file inside source_dir"),
    )


def _argument_findings(spec: JobSpec, script: Path) -> list[Finding]:
    parser = read_parser(script)
    if parser is None:
        return []
    sent = args_mod.arguments(spec)
    extra = set(spec.entry_point.hyperparameters)  # type: ignore[union-attr]
    by_field: dict[str, tuple[list[str], list[str]]] = {}  # field -> (misread, unknown)
    for name in sent:
        reads = parser.reads_as(name)
        if reads == [name]:
            continue
        field = f"entry_point.hyperparameters.{name}" if name in extra else "entry_point.arguments"
        misread, unknown = by_field.setdefault(field, ([], []))
        (misread if reads else unknown).append(f"--{name}" + (f" (read as --{' or --'.join(reads)})" if reads else ""))
    found = []
    if spec.engine == "smp" and not parser.known_args and not parser.reads_as("mp_parameters"):
        found.append(
            Finding(
                "SRC002",
                "error",
                "entry_point.script",
                f"the SageMaker toolkit passes --mp_parameters to every SMP v1 script, and "
                f"{spec.entry_point.script}'s parse_args aborts on it ('unrecognized arguments')",  # type: ignore[union-attr]
                "parse the arguments with parse_known_args, as AWS's train_gpt_simple.py does (or add_argument "
                "'--mp_parameters')",
            )
        )
    for field, (misread, unknown) in sorted(by_field.items()):
        what = f"{spec.entry_point.script}'s parser"  # type: ignore[union-attr]
        if misread:
            found.append(
                Finding(
                    "SRC002",
                    "error",
                    field,
                    (
                        f"{what} does not define {', '.join(misread)}: argparse takes an unambiguous prefix for the "
                        "longer option (or aborts on an ambiguous one), so the script would run with the wrong value"
                    ),
                    _argument_fix(spec, field),
                )
            )
        if unknown:
            severity, effect = (
                ("warning", "parse_known_args drops them")
                if parser.known_args
                else ("error", "parse_args aborts the job at start-up ('unrecognized arguments')")
            )
            found.append(
                Finding(
                    "SRC002",
                    severity,
                    field,
                    f"{what} does not define {', '.join(unknown)}: {effect}",
                    _argument_fix(spec, field),
                )
            )
    return found


def _argument_fix(spec: JobSpec, field: str) -> str:
    if field.startswith("entry_point.hyperparameters."):
        return f"remove {field} (or add its add_argument to the script)"
    if args_mod.style(spec) == "smlaunch":
        return "set entry_point.arguments: aws-smp-gpt2 (or a {spec field: argument} map of what the script defines)"
    return "map only arguments the script defines in entry_point.arguments (or add their add_argument to the script)"


def _imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _requirement_names(root: Path) -> set[str]:
    req = root / "requirements.txt"
    if not req.is_file():
        return set()
    names = set()
    for line in req.read_text(errors="replace").splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#")[0])
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def _import_findings(spec: JobSpec, manifest: Manifest) -> list[Finding]:
    root = manifest.root
    local = {Path(rel).parts[0].removesuffix(".py") for rel, _ in manifest.files}
    modules: set[str] = set()
    for rel, _ in manifest.files:
        if rel.endswith(".py"):
            modules |= _imports(root / rel)
    tops = {m.split(".")[0] for m in modules} - local - set(sys.stdlib_module_names)
    wanted = _requirement_names(root)
    missing = sorted(NOT_IN_IMAGES[t] for t in tops if t in NOT_IN_IMAGES and NOT_IN_IMAGES[t] not in wanted)
    found = []
    if missing:
        found.append(
            Finding(
                "SRC003",
                "warning",
                "entry_point.source_dir",
                (
                    f"the code imports {', '.join(missing)}, which SageMaker's PyTorch training images do not ship and "
                    f"{'requirements.txt does not list' if wanted else 'source_dir has no requirements.txt'}: "
                    "the job fails at its first import"
                ),
                f"add {', '.join(missing)} to {spec.entry_point.source_dir}/requirements.txt",
            )
        )  # type: ignore[union-attr]
    if spec.engine == "torch" and any(m.split(".")[0] == "smdistributed" for m in modules):
        found.append(
            Finding(
                "SRC003",
                "error",
                "engine",
                ("the code imports smdistributed, which only SMP v1's images (engine: smp, PyTorch <= 2.0) have"),
                "set engine: smp (or remove the smdistributed imports from the script)",
            )
        )
    return found


def _upload_findings(manifest: Manifest) -> list[Finding]:
    found = []
    if manifest.escaping_links:
        links = ", ".join(f"{rel} -> {target}" for rel, target in manifest.escaping_links)
        found.append(
            Finding(
                "SRC005",
                "error",
                "entry_point.source_dir",
                f"symlinks leave source_dir {manifest.root}: {links}; smlaunch uploads only what is in it",
                "replace the links with copies inside source_dir (or remove them)",
            )
        )
    if manifest.too_large:
        files = ", ".join(f"{rel} ({human_bytes(size)})" for rel, size in manifest.too_large)
        found.append(
            Finding(
                "SRC006",
                "warning",
                "entry_point.source_dir",
                (f"left out of the upload, over {human_bytes(MAX_FILE_BYTES)}: {files}"),
                "move large files out of source_dir and pass them as a data channel (data: {name: s3://...})",
            )
        )
    return found
