"""`wmplat new-plugin`: the skeleton of a plugin package, from templates.

Internal: plugins use the public API (`import wmplat`, docs/plugins.md).
"""
