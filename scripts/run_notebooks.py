#!/usr/bin/python3
"""Execute the project's notebooks headless: `npm run notebooks`.

    /usr/bin/python3 scripts/run_notebooks.py [--out DIR] [--timeout S] [--iopub] [NOTEBOOK.ipynb ...]

Runs each notebook (default: notebooks/*.ipynb) in the tslab kernel of this project's own
node_modules, with the notebook's folder as working directory and this process's environment
(so NIN_PROFILE reaches the kernel), and writes the executed notebook and an HTML rendering
into DIR (default out/). Exits 1 if any cell fails; tslab sends no traceback, so the failing
cell and its stderr are printed instead.

--iopub also writes DIR/NAME.iopub.json: for each cell, the output messages the kernel sent
(display_data, update_display_data, stream, ...) in order, so that a front end's handling
of live updates can be replayed (test/jupyterlab.test.ts does, with JupyterLab's own code).

Needs Debian's jupyter-nbconvert and python3-nbclient (run with /usr/bin/python3).
"""
import argparse
import base64
import copy
import glob
import json
import os
import shutil
import sys
import tempfile
import time

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    from nbconvert import HTMLExporter
    from nbformat.sign import NotebookNotary
except ImportError as e:
    sys.exit(f'run_notebooks: {e.name} is missing; apt-get install jupyter-nbconvert python3-nbclient '
             f'and run this with /usr/bin/python3')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kernelspec_dir():
    """A throw-away JUPYTER_PATH with a 'tslab' kernel that runs this project's tslab."""
    tslab = os.path.join(ROOT, 'node_modules', 'tslab', 'bin', 'tslab')
    if not os.path.exists(tslab):
        sys.exit(f'run_notebooks: {tslab} is missing; run npm ci first (tslab is a devDependency)')
    if not os.path.exists(os.path.join(ROOT, 'dist', 'lib', 'index.js')):
        sys.exit('run_notebooks: dist/ is missing; run npm run build first (the notebooks import it)')
    path = tempfile.mkdtemp(prefix='nin-jupyter-')
    os.makedirs(os.path.join(path, 'kernels', 'tslab'))
    with open(os.path.join(path, 'kernels', 'tslab', 'kernel.json'), 'w') as f:
        json.dump({'argv': ['node', tslab, 'kernel', '--config-path', '{connection_file}'],
                   'display_name': 'TypeScript', 'language': 'typescript'}, f)
    return path


def to_html(nb):
    """The lab-template HTML of `nb`, with SVG outputs shown as <img> data URLs.

    nbconvert 6.5's templates pass inline SVG through lxml's clean_html, which strips the
    drawing and keeps only its text; an output with `svg_filename` is emitted as <img src>
    instead. A data URL keeps the page self-contained (and SVG in an <img> runs no script).
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get('outputs', []):
            svg = output.get('data', {}).get('image/svg+xml')
            if svg:
                svg = ''.join(svg) if isinstance(svg, list) else svg
                output['svg_filename'] = 'data:image/svg+xml;base64,' + base64.b64encode(svg.encode()).decode()
    html, _ = HTMLExporter(template_name='lab').from_notebook_node(nb)
    return html


OUTPUT_MESSAGES = {'display_data', 'update_display_data', 'execute_result', 'stream', 'error', 'clear_output'}


class RecordingClient(NotebookClient):
    """A NotebookClient that also keeps each cell's output messages as the kernel sent them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages = [[] for _ in self.nb.cells]

    def process_message(self, msg, cell, cell_index):
        if msg['msg_type'] in OUTPUT_MESSAGES:
            self.messages[cell_index].append({'header': {'msg_type': msg['msg_type']}, 'content': msg['content'],
                                              'metadata': msg.get('metadata', {})})
        return super().process_message(msg, cell, cell_index)


def write_text(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def write_replacing(path, write):
    """Writes `path` through a temporary file, so that a reader never sees half of it."""
    tmp = path + '.tmp'
    write(tmp)
    os.replace(tmp, path)


def report_failure(nb, error, timeout):
    """Prints the last cell that ran and its stderr (where tslab puts compile and run errors)."""
    ran = [i for i, c in enumerate(nb.cells) if c.get('metadata', {}).get('execution')]
    if ran:
        cell = nb.cells[ran[-1]]
        print(f'  cell {ran[-1]}:\n    ' + cell.source.replace('\n', '\n    '))
        for output in cell.get('outputs', []):
            if output.get('name') == 'stderr':
                print('  stderr: ' + output['text'].rstrip().replace('\n', '\n          '))
    if isinstance(error, CellTimeoutError):
        print(f'  (timed out after {timeout} s)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebooks', nargs='*')
    parser.add_argument('--out', default=os.path.join(ROOT, 'out'))
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per cell')
    parser.add_argument('--iopub', action='store_true', help="also write each cell's output messages to NAME.iopub.json")
    args = parser.parse_args()
    paths = [os.path.abspath(p) for p in args.notebooks] or sorted(glob.glob(os.path.join(ROOT, 'notebooks', '*.ipynb')))
    for p in paths:
        if not os.path.isfile(p):
            sys.exit(f'run_notebooks: {p}: no such notebook')

    jupyter_path = kernelspec_dir()
    os.environ['JUPYTER_PATH'] = os.pathsep.join(filter(None, [jupyter_path, os.environ.get('JUPYTER_PATH')]))
    os.environ.setdefault('PYDEVD_DISABLE_FILE_VALIDATION', '1')
    os.makedirs(args.out, exist_ok=True)
    profile = os.environ.get('NIN_PROFILE') or '(chosen by the notebook)'
    print(f'executing {len(paths)} notebook(s), profile {profile}, into {os.path.relpath(args.out)}')

    failed = 0
    try:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            name = os.path.splitext(os.path.basename(path))[0]
            started = time.time()
            client = RecordingClient(nb, kernel_name='tslab', timeout=args.timeout, allow_errors=False,
                                    resources={'metadata': {'path': os.path.dirname(path)}})
            try:
                client.execute()
                status = 'ok'
            except (CellExecutionError, CellTimeoutError) as error:
                failed += 1
                status = f'FAILED ({type(error).__name__})'
                report_failure(nb, error, args.timeout)
            # You ran it here, so its outputs are yours: sign it as `jupyter trust` would, or
            # classic Notebook shows its charts (SVG) as text.
            NotebookNotary().sign(nb)
            # Written even on failure, so the outputs up to the failing cell can be read.
            executed = os.path.join(args.out, f'{name}.ipynb')
            write_replacing(executed, lambda tmp: nbformat.write(nb, tmp))
            write_replacing(os.path.join(args.out, f'{name}.html'), lambda tmp: write_text(tmp, to_html(nb)))
            if args.iopub:
                write_replacing(os.path.join(args.out, f'{name}.iopub.json'),
                                lambda tmp: write_text(tmp, json.dumps(client.messages)))
            print(f'{status:6} {os.path.relpath(path, ROOT)} in {time.time() - started:.1f} s '
                  f'-> {os.path.relpath(executed)}, {name}.html')
    finally:
        shutil.rmtree(jupyter_path, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
