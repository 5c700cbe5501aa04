"""Strip outputs and execution counts from notebooks (the test suite requires it): python tools/strip_notebooks.py"""
import glob
import os
import sys

import nbformat

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
paths = sys.argv[1:] or glob.glob(os.path.join(root, "notebooks", "*.ipynb"))
for path in paths:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    print("stripped", path)
