"""`slim-ingest`: raw skeleton files -> samples.h5 + manifest.parquet + shards + card.json."""
from __future__ import annotations

import click

from slim.ingest.clitools import LazyGroup

LAZY = {
    "synth": "slim.ingest.cmd_synth:synth",
    "ntu60": "slim.ingest.cmd_ingest:ntu60",
    "ntu120": "slim.ingest.cmd_ingest:ntu120",
    "pku2": "slim.ingest.cmd_ingest:pku2",
    "synthetic": "slim.ingest.cmd_ingest:synthetic",
    "nwucla": "slim.ingest.cmd_ingest:nwucla",
    "verify": "slim.ingest.cmd_verify:verify",
    "info": "slim.ingest.cmd_info:info",
    "show": "slim.ingest.cmd_show:show",
}


@click.group(cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slim-skeleton")
def main():
    """Turn raw skeleton files into the dataset layout every other stage reads.

    \b
    Typical use:
      slim-ingest synth --out raw/synthetic            # make a synthetic NTU-format dataset
      slim-ingest synthetic --raw raw/synthetic --out data   # ingest it
      slim-ingest ntu120 --raw /datasets/nturgbd_skeletons_s001_to_s017 \\
                         --raw /datasets/nturgbd_skeletons_s018_to_s032 --out data
      slim-ingest nwucla --raw all_sqe.zip --out data   # NW-UCLA, straight from the zip
      slim-ingest verify data/ntu120                   # re-check checksums and counts
      slim-ingest info data/ntu120                     # what is there
      slim-ingest show data/synthetic S001C001P001R001A001 --views --out sample.png
    """


if __name__ == "__main__":  # pragma: no cover
    main()
