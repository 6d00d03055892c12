"""`wmplat zoo import`: a folder of checkpoints in someone else's layout becomes a verified
wmplat zoo under $WMPLAT_HOME/zoos/NAME (docs/byoz.md).

One module per source format reads checkpoints into `Checkpoint`s (`statedict`, `modelzoos`,
`smallcnnzoo`, `gptlmdb`); `checks` holds what every checkpoint must pass, `split` the seeded
draw of heldout runs, and `write` recomputes the qualities, compares them with the recorded ones
and writes the zoo whole or not at all; `cli` ties them to the command's options.
"""

FORMATS = ("statedict", "modelzoos", "smallcnnzoo", "gpt-lmdb")   # `wmplat zoo import --format`
