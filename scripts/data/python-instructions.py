#!/usr/bin/python3
"""Makes an Alpaca JSONL instruction set from a Python source tree: one example per short documented
function, the instruction its docstring's first line, the answer its code without the docstring.

An instruction set anyone with Debian's Python can make offline (no download), so docs/results.md can
measure fine-tuning on instruction data. Deterministic: files in sorted order, functions in source order.

  /usr/bin/python3 scripts/data/python-instructions.py /usr/lib/python3.11 --out python-instructions.jsonl
"""
import argparse
import ast
import json
import os
import sys


def functions(path):
    try:
        with open(path, encoding='utf-8') as f:
            source = f.read()
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    lines = source.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith('_'):
            continue
        doc = ast.get_docstring(node)
        if not doc or not node.body or node.end_lineno is None:
            continue
        summary = doc.strip().splitlines()[0].strip()
        if len(summary) < 12:
            continue
        first = node.body[0]
        body = node.body[1:]  # the docstring is the first statement
        if not body:
            continue
        header = lines[node.lineno - 1 : first.lineno - 1]
        if node.decorator_list or len(header) != 1:
            continue  # one-line signatures only: the answer stays one contiguous piece of code
        code = [header[0]] + lines[body[0].lineno - 1 : node.end_lineno]
        indent = len(header[0]) - len(header[0].lstrip())
        yield node.name, summary, '\n'.join(line[indent:] for line in code)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='a folder of Python sources, e.g. /usr/lib/python3.11')
    parser.add_argument('--out', required=True)
    parser.add_argument('--max-chars', type=int, default=400, help='longest answer kept (characters)')
    parser.add_argument('--limit', type=int, default=3000, help='most examples written')
    args = parser.parse_args()
    written = 0
    with open(args.out, 'w', encoding='utf-8') as out:
        for folder, dirs, files in os.walk(args.root):
            dirs[:] = sorted(d for d in dirs if d not in ('test', 'tests', 'idlelib', 'site-packages', 'dist-packages', '__pycache__'))
            for name in sorted(files):
                if not name.endswith('.py') or written >= args.limit:
                    continue
                path = os.path.join(folder, name)
                module = os.path.relpath(path, args.root)[:-3].replace(os.sep, '.')
                for func, summary, code in functions(path):
                    if len(code) > args.max_chars or written >= args.limit:
                        continue
                    record = {'instruction': f'Write the Python function `{func}` of `{module}`: {summary}', 'output': code, 'category': module.split('.')[0]}
                    out.write(json.dumps(record, ensure_ascii=False) + '\n')
                    written += 1
    print(f'{written} examples in {args.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
