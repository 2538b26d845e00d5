"""README.md and docs/*.md stay true to the code: every command-line flag in their shell
code blocks is one the command's parser accepts, every script and module they run exists,
every relative link and image resolves, every ``scripts/train.sh`` variable they set is
one the scripts read, and the README's test command is the one CI runs.

``check_markdown`` is the checker; the tests at the end run it on synthetic Markdown with
one mistake of each kind, so a broken doc is shown to fail.
"""
import argparse
import contextlib
import glob
import importlib.util
import os
import re
import shlex
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts')
DOCS = [os.path.join(REPO, 'README.md')] + sorted(glob.glob(os.path.join(REPO, 'docs', '*.md')))

#: Fenced code blocks whose lines are shell commands (``console``: the lines after ``$ ``).
SHELL_LANGS = ('', 'sh', 'bash', 'shell', 'console')
FENCE = re.compile(r'^(`{3,}|~{3,})\s*([\w+-]*)[^\n]*\n(.*?)^\1\s*$', re.M | re.S)
#: ``[text](target)`` and ``![alt](target "title")``; ``[name]: target`` references.
LINK = re.compile(r'!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
REFERENCE = re.compile(r'^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$', re.M)
INLINE_CODE = re.compile(r'`[^`\n]*`')
ASSIGNMENT = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=')
SEPARATORS = {';', '&&', '||', '|', '&', '(', ')'}
#: Variables that MXNet, OpenMP, CUDA, Horovod or the package read (not train.sh's own).
RUNTIME_ENV = re.compile(r'^(OMP|KMP|MXNET|DNNL|CUDA|HOROVOD|GLUON_DEEPLAB)_|^PYTHONPATH$')
#: Scripts whose arguments go to ``scripts/train.sh`` and so to ``python -m
#: gluon_deeplab.train``; they set some of train.sh's variables themselves.
TRAIN_SH = 'scripts/train.sh'
TRAIN_SH_WRAPPERS = ('scripts/train_camvid.sh', 'scripts/quickstart.sh')
#: Scripts that are thin entry points of a module's ``main``.
SCRIPT_MODULES = {'scripts/train.py': 'gluon_deeplab.train',
                  'scripts/eval.py': 'gluon_deeplab.evaluate',
                  'scripts/predict.py': 'gluon_deeplab.predict',
                  'scripts/export.py': 'gluon_deeplab.export',
                  'scripts/launch_dist.py': 'gluon_deeplab.launch'}
LAUNCHERS = ('gluon_deeplab.launch',)


# ---------------------------------------------------------------- the commands' parsers

class _Captured(Exception):
    def __init__(self, parser):
        super(_Captured, self).__init__()
        self.parser = parser


@contextlib.contextmanager
def _capturing_parsers():
    """While inside, ``ArgumentParser.parse_args`` raises ``_Captured(parser)`` instead of
    parsing: a command's ``main`` or ``parse_args`` builds its parser and stops there."""
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        raise _Captured(self)
    argparse.ArgumentParser.parse_args = capture
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original


def _parser_of(build):
    with _capturing_parsers():
        try:
            build()
        except _Captured as captured:
            return captured.parser
    raise AssertionError('%r never called parse_args' % build)


def _script_module(name):
    """``scripts/<name>.py`` imported as a module (scripts/ on the path, as when run; the
    environment restored, should a script set variables at import)."""
    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    environ = dict(os.environ)
    try:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + '.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _build_parsers():
    from gluon_deeplab import evaluate, export, launch, predict, train
    from gluon_deeplab.datasets import prepare
    from gluon_deeplab.deploy import onnx_predict
    return {
        'gluon_deeplab.train': _parser_of(lambda: train.parse_args([])),
        'gluon_deeplab.evaluate': _parser_of(lambda: evaluate.parse_args([])),
        'gluon_deeplab.predict': _parser_of(lambda: predict.parse_args([])),
        'gluon_deeplab.export': _parser_of(lambda: export.parse_args([])),
        'gluon_deeplab.launch': _parser_of(lambda: launch.main([])),
        'gluon_deeplab.datasets.prepare': _parser_of(lambda: prepare.main([])),
        'gluon_deeplab.deploy.onnx_predict': _parser_of(lambda: onnx_predict.parse_args([])),
        'scripts/bench.py': _parser_of(lambda: _script_module('bench').main([])),
        'scripts/profile_ops.py': _parser_of(lambda: _script_module('profile_ops').main([])),
        'scripts/prediction_figure.py':
            _parser_of(lambda: _script_module('prediction_figure').main([])),
    }


_PARSERS = {}


def parsers():
    """Command name -> its ``argparse.ArgumentParser``, built once."""
    if not _PARSERS:
        _PARSERS.update(_build_parsers())
    return _PARSERS


def console_scripts(repo=REPO):
    """setup.py's console-script names -> their modules."""
    with open(os.path.join(repo, 'setup.py')) as f:
        return dict(re.findall(r"'([\w-]+)\s*=\s*(gluon_deeplab[\w.]*):\w+'", f.read()))


# ---------------------------------------------------------------- reading Markdown

def code_blocks(text):
    """``(language, body, first line number)`` of every fenced code block."""
    for m in FENCE.finditer(text):
        yield m.group(2).lower(), m.group(3), text.count('\n', 0, m.start(3)) + 1


def shell_lines(lang, body, first_line):
    """``(line number, command line)`` of a shell block: continuation lines joined; in a
    ``console`` block only the ``$ `` lines."""
    lines, pending, start = [], '', None
    for number, line in enumerate(body.split('\n'), first_line):
        if lang == 'console' and not pending:
            if not line.startswith('$ '):
                continue
            line = line[2:]
        if start is None:
            start = number
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        lines.append((start, pending + line))
        pending, start = '', None
    if pending:
        lines.append((start, pending))
    return lines


def words(line):
    """A command line as shell words (quotes removed, ``#`` comments dropped); None when
    it does not split as shell."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split, lexer.commenters = True, '#'
    try:
        return list(lexer)
    except ValueError:
        return None


def simple_commands(tokens):
    """Split shell words at ``;``, ``&&``, ``|`` ...: a list of word lists."""
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        elif token.endswith(';') and len(token) > 1:
            current.append(token[:-1])
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def _is_python(word):
    return re.match(r'^(\S*/)?python(3(\.\d+)?)?$', word) is not None or word == '$PYTHON'


def _script_path(word):
    """``scripts/x.sh`` from ``scripts/x.sh``, ``./scripts/x.sh``."""
    return word[2:] if word.startswith('./') else word


def command_of(tokens, scripts):
    """``(kind, name, env, args)`` of a simple command: kind ``module`` (name: the
    module), ``script`` (name: ``scripts/...``) or None (not ours), leading variable
    assignments ``env`` (name -> value) and the arguments. Wrappers (``time``,
    ``horovodrun ... python ...``) are looked through."""
    env, i = {}, 0
    while i < len(tokens) and ASSIGNMENT.match(tokens[i]):
        name, value = tokens[i].split('=', 1)
        env[name] = value
        i += 1
    rest = tokens[i:]
    for start in range(len(rest)):
        word = rest[start]
        if _is_python(word):
            args = rest[start + 1:]
            if args[:1] == ['-m'] and len(args) > 1:
                return 'module', args[1], env, args[2:]
            if args and _script_path(args[0]).startswith('scripts/'):
                return 'script', _script_path(args[0]), env, args[1:]
            return None, None, env, args
        if word in ('sh', 'bash') and start + 1 < len(rest):
            return 'script', _script_path(rest[start + 1]), env, rest[start + 2:]
        if _script_path(word).startswith('scripts/'):
            return 'script', _script_path(word), env, rest[start + 1:]
        if word in scripts:
            return 'module', scripts[word], env, rest[start + 1:]
        if start == 0 and word not in ('time', '/usr/bin/time', 'env', 'nohup', 'exec',
                                       'timeout', 'horovodrun', 'mpirun'):
            return None, None, env, rest  # another program: its words are not ours
    return None, None, env, rest


def _flags(args):
    """The option words of ``args`` (``--name`` of ``--name=value``, ``-x``), with
    ``[--optional]`` brackets removed."""
    found = []
    for arg in args:
        arg = arg.strip('[]')
        if arg == '--' or not arg.startswith('-'):
            continue
        if arg.startswith('--'):
            found.append(arg.split('=', 1)[0])
        elif re.match(r'^-[A-Za-z]$', arg):
            found.append(arg)
    return found


def _module_file(module, repo):
    path = os.path.join(repo, *module.split('.'))
    return (os.path.isfile(path + '.py') or os.path.isfile(os.path.join(path, '__main__.py')))


def _script_reads(script_text, name):
    return re.search(r'\$\{?%s\b' % re.escape(name), script_text) is not None


def _script_sets(script_text, name):
    return re.search(r'(^|\s)%s=' % re.escape(name), script_text) is not None


def train_sh_reads(script, name, repo=REPO):
    """Whether ``NAME=... sh <script>`` has an effect: ``script`` reads ``$NAME`` or, for a
    wrapper of train.sh, train.sh reads it and the wrapper does not set it."""
    def text(path):
        with open(os.path.join(repo, path)) as f:
            return f.read()
    own = text(script)
    if _script_reads(own, name):
        return True
    return (script != TRAIN_SH and TRAIN_SH in own and _script_reads(text(TRAIN_SH), name)
            and not _script_sets(own, name))


def check_command(tokens, where, repo=REPO, parsers_by_name=None, scripts=None):
    """Problems (strings) of one simple command of a code block."""
    parsers_by_name = parsers() if parsers_by_name is None else parsers_by_name
    scripts = console_scripts(repo) if scripts is None else scripts
    kind, name, env, args = command_of(tokens, scripts)
    problems = []
    if kind is None:
        return problems
    if kind == 'module':
        if not name.startswith('gluon_deeplab'):
            return problems  # python -m pytest, pip ...
        if not _module_file(name, repo):
            return ['%s: module %s does not exist' % (where, name)]
        parser_name = name
    else:
        if not os.path.exists(os.path.join(repo, name)):
            return ['%s: %s does not exist' % (where, name)]
        parser_name = SCRIPT_MODULES.get(name, name)
        if name == TRAIN_SH or name in TRAIN_SH_WRAPPERS:
            parser_name = 'gluon_deeplab.train'
            for var in env:
                if not RUNTIME_ENV.match(var) and not train_sh_reads(name, var, repo):
                    problems.append('%s: %s is not read by %s' % (where, var, name))
    if parser_name in LAUNCHERS and '--' in args:
        split = args.index('--')
        args, worker = args[:split], args[split + 1:]
        problems += check_command(worker, where, repo, parsers_by_name, scripts)
    parser = parsers_by_name.get(parser_name)
    if parser is None:
        return problems
    for flag in _flags(args):
        if flag not in parser._option_string_actions:
            problems.append('%s: %s does not take %s' % (where, parser_name, flag))
    return problems


def _train_sh_tables(text):
    """Names in the first column of Markdown tables whose header's first cell names
    ``train.sh`` (the table of its variables): ``(line number, name)``."""
    found, in_table = [], False
    for number, line in enumerate(text.split('\n'), 1):
        if not line.lstrip().startswith('|'):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if not in_table:
            in_table = 'header'
            target = 'train.sh' in cells[0]
            continue
        if in_table == 'header':  # the |---| row
            in_table = True
            continue
        if target:
            found += [(number, n) for n in re.findall(r'`([A-Z][A-Z0-9_]*)`', cells[0])]
    return found


def check_markdown(text, path, repo=REPO, parsers_by_name=None, scripts=None):
    """Every problem of Markdown ``text`` (the file at ``path``, links relative to its
    folder): unknown flags, missing scripts and modules, broken relative links and
    images, train.sh variables that no script reads."""
    rel = os.path.relpath(path, repo)
    problems = []
    for lang, body, first in code_blocks(text):
        if lang not in SHELL_LANGS:
            continue
        for number, line in shell_lines(lang, body, first):
            where = '%s:%d' % (rel, number)
            tokens = words(line)
            if tokens is None:
                continue
            for command in simple_commands(tokens):
                problems += check_command(command, where, repo, parsers_by_name, scripts)
            for word in tokens:  # scripts named anywhere in a command line
                m = re.match(r'^(?:\./)?(scripts/[\w./-]*\w)', word)
                if m and not os.path.exists(os.path.join(repo, m.group(1))):
                    problem = '%s: %s does not exist' % (where, m.group(1))
                    if problem not in problems:
                        problems.append(problem)
    prose = FENCE.sub(lambda m: '\n' * m.group(0).count('\n'), text)
    for m in INLINE_CODE.finditer(prose):  # `python -m gluon_deeplab.x --flag` in a sentence
        where = '%s:%d' % (rel, prose.count('\n', 0, m.start()) + 1)
        tokens = words(m.group(0)[1:-1].replace('\\|', '|'))
        for command in simple_commands(tokens or []):
            first = [t for t in command if not ASSIGNMENT.match(t)][:1]
            if first and (_is_python(first[0]) or first[0] in ('sh', 'bash')
                          or first[0] in (scripts or console_scripts(repo))):
                problems += check_command(command, where, repo, parsers_by_name, scripts)
        for word in tokens or []:  # a file of our scripts/ (not another project's)
            m2 = re.match(r'^(?:\./)?(scripts/[\w./-]*\w)', word)
            if m2 and not os.path.exists(os.path.join(repo, m2.group(1))) and os.path.isdir(
                    os.path.join(repo, os.path.dirname(m2.group(1)))):
                problems.append('%s: %s does not exist' % (where, m2.group(1)))
    prose = INLINE_CODE.sub('``', prose)
    for pattern in (LINK, REFERENCE):
        for m in pattern.finditer(prose):
            target = m.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I) or target.startswith('#'):
                continue  # http(s), mailto, anchors
            file_part = target.split('#', 1)[0]
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(resolved):
                problems.append('%s:%d: link %s does not resolve (%s)' % (
                    rel, prose.count('\n', 0, m.start()) + 1, target,
                    os.path.relpath(resolved, repo)))
    for number, name in _train_sh_tables(text):
        if not RUNTIME_ENV.match(name) and not train_sh_reads(TRAIN_SH, name, repo):
            problems.append('%s:%d: %s is not read by %s' % (rel, number, name, TRAIN_SH))
    return list(dict.fromkeys(problems))  # each once, in order


# ---------------------------------------------------------------- the docs

def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('path', DOCS, ids=[os.path.relpath(p, REPO) for p in DOCS])
def test_docs_are_true_to_the_code(path):
    problems = check_markdown(_read(path), path)
    assert not problems, '\n'.join(problems)


def test_readme_test_command_is_what_ci_runs():
    ci = _read(os.path.join(REPO, '.ci', 'run'))
    command = re.search(r'^exec (.+)$', ci, re.M).group(1).strip()
    readme = _read(os.path.join(REPO, 'README.md'))
    lines = [line.strip() for lang, body, _ in code_blocks(readme) if lang in SHELL_LANGS
             for line in body.split('\n')]
    assert command in lines, 'README.md has no code line %r (what .ci/run runs)' % command


def test_every_doc_is_linked_from_the_readme():
    readme = _read(os.path.join(REPO, 'README.md'))
    for path in DOCS[1:]:
        assert 'docs/%s' % os.path.basename(path) in readme, path


# ---------------------------------------------------------------- the checker itself

BAD_DOC = """# Bad

```sh
python -m gluon_deeplab.train --dataset camvid --no_such_flag 3
python -m gluon_deeplab.evaluate --checkpoint x.params --scales 1.0 --flipp
sh scripts/no_such_script.sh --head vortex
python -m gluon_deeplab.no_such_module --help
NO_SUCH_VARIABLE=1 ITERS1=10 sh scripts/train.sh --aspp_or_vortex 2 --bogus_train_flag
BATCH_SIZE=4 sh scripts/train_camvid.sh
python scripts/launch_dist.py -n 2 -q -- python -m gluon_deeplab.train --not_a_train_flag
gluon-deeplab-predict --checkpoint x.params --bad_predict_flag img.png
python scripts/bench.py --size 320 --no_bench_flag
```

```console
$ python -m gluon_deeplab.datasets.prepare voc_aug VOCdevkit_aug --no_prepare_flag
output --not_a_command_line
```

In a sentence, `python -m gluon_deeplab.export --checkpoint x --inline_bad_flag` and
`scripts/gone.py` are checked too; `--not_a_command 3` alone is not.

See [the guide](no_such_guide.md), ![curves](no_such_picture.png) and
[the sample](../data/camvid_sample/README.md#source), [web](https://example.com/x.md).

| `scripts/train.sh` variable | what |
|---|---|
| `ITERS1` | phase 1 iterations |
| `NOT_READ_BY_TRAIN_SH` | nothing |
"""

GOOD_DOC = """```sh
OMP_NUM_THREADS=1 ITERS1=900 RUN_DIR=runs/x sh scripts/train_camvid.sh --aspp_or_vortex 2
python -m gluon_deeplab.train --head=vortex --gpus 0,1 [--syncbn] --max_iter 6 ...
python scripts/launch_dist.py -n 2 -H hosts.txt --host 10.0.0.1 -- \\
    python -m gluon_deeplab.train --kvstore dist_sync
horovodrun -np 8 python -m gluon_deeplab.train --kvstore horovod  # a --comment_flag
```

```python
python -m gluon_deeplab.train --flags_in_python_blocks_are_not_shell
```

![ASPP](camvid_aspp_curves.png) [training](training.md#resume) [top](#bad)
"""


@pytest.fixture(scope='module')
def bad_problems():
    return check_markdown(BAD_DOC, os.path.join(REPO, 'docs', 'bad.md'))


@pytest.mark.parametrize('expected', [
    'gluon_deeplab.train does not take --no_such_flag',
    'gluon_deeplab.evaluate does not take --flipp',
    'scripts/no_such_script.sh does not exist',
    'module gluon_deeplab.no_such_module does not exist',
    'NO_SUCH_VARIABLE is not read by scripts/train.sh',
    'gluon_deeplab.train does not take --bogus_train_flag',
    'BATCH_SIZE is not read by scripts/train_camvid.sh',  # the wrapper sets it itself
    'gluon_deeplab.launch does not take -q',
    'gluon_deeplab.train does not take --not_a_train_flag',
    'gluon_deeplab.predict does not take --bad_predict_flag',
    'scripts/bench.py does not take --no_bench_flag',
    'gluon_deeplab.datasets.prepare does not take --no_prepare_flag',
    'link no_such_guide.md does not resolve',
    'link no_such_picture.png does not resolve',
    'NOT_READ_BY_TRAIN_SH is not read by scripts/train.sh',
    'gluon_deeplab.export does not take --inline_bad_flag',
    'scripts/gone.py does not exist',
])
def test_the_checker_reports_each_kind_of_mistake(bad_problems, expected):
    assert any(expected in p for p in bad_problems), '\n'.join(bad_problems)


def test_the_checker_reports_nothing_else(bad_problems):
    assert len(bad_problems) == 17, '\n'.join(bad_problems)
    assert not [p for p in bad_problems if 'ITERS1' in p or 'not_a_command' in p
                or 'example.com' in p or 'camvid_sample' in p]


def test_the_checker_accepts_good_docs():
    problems = check_markdown(GOOD_DOC, os.path.join(REPO, 'docs', 'good.md'))
    assert not problems, '\n'.join(problems)
