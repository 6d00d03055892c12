"""The method `gpt` (placeholder: being written)."""

import wmplat


class GPT(wmplat.Method):
    name = "gpt"
