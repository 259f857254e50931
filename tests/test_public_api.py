"""The package's public names: what ``import hiapi_notebook`` offers, lazily, and typed."""


def test_the_lazy_public_names_are_the_ones_type_checkers_see():
    """Each name ``hiapi_notebook`` imports lazily is also in its TYPE_CHECKING block (so
    editors see its real signature), from the same module, and resolves at run time."""
    import ast
    import importlib
    from pathlib import Path

    import hiapi_notebook

    tree = ast.parse(Path(hiapi_notebook.__file__).read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"
    )
    seen = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                seen[alias.asname or alias.name] = node.module or alias.name
    for name, module in hiapi_notebook._LAZY.items():
        assert seen.get(name) == (module or name), name
        assert getattr(hiapi_notebook, name) is not None
        importlib.import_module(f"hiapi_notebook.{module or name}")
