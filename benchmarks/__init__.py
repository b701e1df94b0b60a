"""The benchmarks: run each from the repository root as a module, e.g. ``python -m benchmarks.retrieval --help``.

``_common`` holds what the scripts share; the results they write are the ``RESULTS*.md`` files here.
"""
