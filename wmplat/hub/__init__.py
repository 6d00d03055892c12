"""The Hugging Face Hub: zoos pulled at a pinned revision and pushed as dataset repos
(`zoos`), results published as a table anyone can load (`results`), their dataset cards
(`cards`), and what both directions share (`client`). huggingface_hub is imported only here,
and only when a command needs it."""
