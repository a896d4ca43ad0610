"""Every file under the `--raw` folders, accounted for exactly once.

The rule every ingest keeps (checked by `slim-ingest verify`), in `card.json["accounting"]`:

    files_seen = files_ingested + files_skipped + files_ignored

- seen: every regular file under the raw folders (recursively, hidden ones included);
- ingested: files that became samples (their sha256 is in `card["files"]`); for NTU-format
  datasets one file is one sample, so files_ingested = samples_written;
- skipped: files that look like the dataset's files but were not used, one entry each in
  `card["skipped"]` ({file, path, reason}): unreadable, officially missing, duplicate, ...;
- ignored: every other file, one entry each in `card["ignored"]` ({file, path, reason}):
  lists, AppleDouble files, files of other formats, and metadata that was read but is not
  a sample (the reason says which).

PKU-MMD adds one rule per label line (non-blank lines of the label files of the videos
that were read): label_lines = samples_written + label_lines_skipped, each skipped line in
`card["skipped_labels"]` ({video, line, reason}).

How a reader uses it (`datasets.plan`): `Inventory(raw_dirs)` walks once; the planner
`take`s the files with its extension (case-insensitive), adds jobs, `skip`s those it will
not read and `note`s the metadata files it read; `ignored()` gives the rest with a reason.
"""
from __future__ import annotations

from pathlib import Path

RULE = "files_seen = files_ingested + files_skipped + files_ignored"
PKU_RULE = "label_lines = samples_written + label_lines_skipped"

#: Names that are never data: operating-system and archive-tool droppings.
_SYSTEM = {".ds_store": "macOS folder metadata (.DS_Store)",
           "thumbs.db": "Windows thumbnail cache",
           "desktop.ini": "Windows folder settings"}


def entry(path: Path, root: Path, reason: str) -> dict:
    """The card's record of one file: {file: name, path: path under its --raw root,
    reason}."""
    try:
        rel = str(Path(path).relative_to(root))
    except ValueError:
        rel = str(path)
    return {"file": Path(path).name, "path": rel, "reason": reason}


def has_ext(name: str, ext: str) -> bool:
    """Whether `name` ends with `ext` (e.g. ".skeleton"), ignoring case."""
    return name.lower().endswith(ext.lower()) and len(name) > len(ext)


def strip_ext(name: str, ext: str) -> str:
    """`name` without its (any-case) `ext`."""
    return name[: -len(ext)] if has_ext(name, ext) else name


def other_reason(path: Path, wanted: str) -> str:
    """Why a file that no reader took is not data, in words a user can act on."""
    name = path.name
    low = name.lower()
    if low in _SYSTEM:
        return _SYSTEM[low]
    if name.startswith("._"):
        return "macOS AppleDouble resource file ('._' prefix, e.g. from __MACOSX/): metadata, not data"
    if "__MACOSX" in path.parts:
        return "inside __MACOSX/ (macOS archive metadata), not data"
    suffix = path.suffix or "(no extension)"
    return f"not a {wanted} file ({suffix})"


def archive_members(archive: Path) -> tuple[Path, list[Path]]:
    """A zip archive given as --raw (the official downloads) as a root: (`<archive>::`,
    [`<archive>::/<member>` for every file member, in name order]). The paths are read
    with `nwucla.read_bytes` (members in place, no unpacking); relative to the root they
    are the member names. Raises ValueError for a file that is not a zip archive."""
    import zipfile
    root = Path(f"{archive}::")
    try:
        with zipfile.ZipFile(archive) as z:
            names = sorted(n for n in z.namelist() if not n.endswith("/"))
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{archive}: not a readable zip archive ({e})") from None
    return root, [root / n for n in names]


class Inventory:
    """The regular files under `raw_dirs` (each once, in sorted order per root; a .zip
    root contributes its members, see `archive_members`) and what became of each one.
    Raises ValueError for a .zip that is not an archive; missing folders are checked by
    the caller."""

    def __init__(self, raw_dirs: list[Path]):
        self.roots = [Path(d) for d in raw_dirs]
        self.files: dict[Path, Path] = {}           # file -> its --raw root
        for root in self.roots:
            if root.is_file():
                root, members = archive_members(root)
            else:
                members = (p for p in sorted(root.rglob("*")) if p.is_file())
            for p in members:
                if p not in self.files:
                    self.files[p] = root
        self._taken: set[Path] = set()
        self._notes: dict[Path, str] = {}

    def __len__(self) -> int:
        return len(self.files)

    def take(self, ext: str, where=None) -> list[Path]:
        """Files named `*<ext>` (any case), not AppleDouble `._*` copies and not inside
        `__MACOSX/`, for which `where(path, root)` is true (default: all); marks them
        taken. The caller then makes each one a job or `skip`s it."""
        out = []
        for p, root in self.files.items():
            if p in self._taken or not has_ext(p.name, ext) or p.name.startswith("._") \
                    or "__MACOSX" in p.relative_to(root).parts:
                continue
            if where is None or where(p, root):
                self._taken.add(p)
                out.append(p)
        return out

    def note(self, path: Path, reason: str) -> None:
        """Record a metadata file that was read but is not a sample (split list, class
        names); it is counted as ignored with `reason`."""
        self._notes[Path(path)] = reason

    def entry(self, path: Path, reason: str) -> dict:
        """`entry` with the root `path` was found under."""
        return entry(path, self.files.get(Path(path), Path(path).parent), reason)

    def ignored(self, wanted: str) -> list[dict]:
        """Every file not taken, with a reason (`note`d ones with theirs)."""
        return [self.entry(p, self._notes.get(p) or other_reason(p.relative_to(root), wanted))
                for p, root in self.files.items() if p not in self._taken]


def accounting(files_seen: int, files_ingested: int, skipped: list[dict], ignored: list[dict],
               samples: int, label_lines: int | None = None,
               skipped_labels: list[dict] | None = None) -> dict:
    """The card's `accounting` block (see the module docstring for the rules)."""
    out = {"rule": RULE, "files_seen": files_seen, "files_ingested": files_ingested,
           "files_skipped": len(skipped), "files_ignored": len(ignored), "samples_written": samples}
    if label_lines is not None:
        out.update(label_rule=PKU_RULE, label_lines=label_lines,
                   label_lines_skipped=len(skipped_labels or []))
    return out


def check(card: dict) -> list[str]:
    """Problems with `card`'s accounting (empty when every input is accounted for)."""
    a = card.get("accounting")
    if a is None:
        return ["card.json has no `accounting` block (written by an older slim-ingest); "
                "re-run the ingest to account for every input file"]
    problems = []
    skipped, ignored = card.get("skipped", []), card.get("ignored", [])
    if a["files_seen"] != a["files_ingested"] + len(skipped) + len(ignored):
        problems.append(f"accounting: {a['files_seen']} files seen != {a['files_ingested']} ingested + "
                        f"{len(skipped)} skipped + {len(ignored)} ignored")
    if a["files_ingested"] != len(card.get("files", {})):
        problems.append(f"accounting: {a['files_ingested']} files ingested, card lists "
                        f"{len(card.get('files', {}))} checksums")
    if a["samples_written"] != card["num_samples"]:
        problems.append(f"accounting: {a['samples_written']} samples written, card says {card['num_samples']}")
    if card["dataset"] != "pku2" and a["files_ingested"] != card["num_samples"]:
        problems.append(f"accounting: {a['files_ingested']} files ingested but {card['num_samples']} "
                        "samples (one file is one sample)")
    for kind, rows in (("skipped", skipped), ("ignored", ignored)):
        bad = [r.get("file") for r in rows if not r.get("reason")]
        if bad:
            problems.append(f"accounting: {len(bad)} {kind} files without a reason, e.g. {bad[:3]}")
    if "label_lines" in a:
        sl = card.get("skipped_labels", [])
        if a["label_lines"] != card["num_samples"] + len(sl):
            problems.append(f"accounting: {a['label_lines']} label lines != {card['num_samples']} samples + "
                            f"{len(sl)} skipped label lines")
        if any(not r.get("reason") or "line" not in r for r in sl):
            problems.append("accounting: a skipped label line lacks its line number or reason")
    return problems
