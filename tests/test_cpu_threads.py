"""MXNet's OpenMP thread count: one per physical core (cpu_threads.py)."""
import os
import subprocess
import sys

import pytest

from gluon_deeplab.runtime.cpu_threads import (MARK, cgroup_cpu_limit, default_threads,
                                               mxnet_threads, physical_cores, set_default_threads)


def _fake_sysfs(root, siblings):
    for cpu, text in siblings.items():
        folder = root / ('cpu%d' % cpu) / 'topology'
        folder.mkdir(parents=True)
        (folder / 'thread_siblings_list').write_text(text + '\n')
    return str(root)


def test_physical_cores_counts_hyper_threads_once(tmp_path):
    # 4 cores x 2 threads, Linux numbering (cpu N and N + 4 share a core); no SMT
    smt = _fake_sysfs(tmp_path / 'smt', {cpu: '%d,%d' % (cpu % 4, cpu % 4 + 4)
                                         for cpu in range(8)})
    assert physical_cores(range(8), smt) == 4
    assert physical_cores([0, 4], smt) == 1  # siblings of one core
    flat = _fake_sysfs(tmp_path / 'flat', {0: '0', 1: '1'})
    assert physical_cores([0, 1], flat) == 2
    assert physical_cores([0, 1, 2], str(tmp_path / 'missing')) == 3  # unreadable: CPUs


def test_cgroup_cpu_limit_reads_v2_and_v1_quotas_the_smallest_up_the_tree(tmp_path):
    proc = tmp_path / 'cgroup'
    v2 = tmp_path / 'v2'
    (v2 / 'job' / 'step').mkdir(parents=True)
    proc.write_text('0::/job/step\n')
    assert cgroup_cpu_limit(str(v2), str(proc)) is None  # no quota anywhere
    (v2 / 'job' / 'cpu.max').write_text('250000 100000\n')  # docker --cpus 2.5
    (v2 / 'job' / 'step' / 'cpu.max').write_text('max 100000\n')
    assert cgroup_cpu_limit(str(v2), str(proc)) == 2
    (v2 / 'cpu.max').write_text('50000 100000\n')  # half a CPU: still one thread
    assert cgroup_cpu_limit(str(v2), str(proc)) == 1
    v1 = tmp_path / 'v1'
    (v1 / 'cpu').mkdir(parents=True)
    (v1 / 'cpu' / 'cpu.cfs_period_us').write_text('100000\n')
    (v1 / 'cpu' / 'cpu.cfs_quota_us').write_text('300000\n')
    assert cgroup_cpu_limit(str(v1), str(tmp_path / 'no_proc_file')) == 3
    (v1 / 'cpu' / 'cpu.cfs_quota_us').write_text('-1\n')
    assert cgroup_cpu_limit(str(v1), str(tmp_path / 'no_proc_file')) is None


def test_set_default_threads_leaves_the_user_s_choice_alone():
    none = {}
    assert set_default_threads({'OMP_NUM_THREADS': '3'}, none, 'x86_64') is None
    assert set_default_threads({'MXNET_OMP_MAX_THREADS': '3'}, none, 'x86_64') is None
    assert set_default_threads({}, {'mxnet': None}, 'x86_64') is None  # too late to matter
    assert set_default_threads({}, none, 'aarch64') is None  # MXNet uses every CPU there
    environ = {}
    assert set_default_threads(environ, none, 'x86_64') == str(default_threads())
    assert environ == {'OMP_NUM_THREADS': str(default_threads()),
                       MARK: str(default_threads())}


def test_mxnet_threads_is_what_mxnet_would_use():
    assert mxnet_threads({'MXNET_OMP_MAX_THREADS': '3', 'OMP_NUM_THREADS': '5'}) == 3
    assert mxnet_threads({'OMP_NUM_THREADS': '4,2'}) == 4  # nested levels: the outer one
    cpus = len(os.sched_getaffinity(0))
    assert mxnet_threads({}, 'x86_64') == max(1, cpus // 2)  # src/engine/openmp.cc
    assert mxnet_threads({}, 'aarch64') == cpus


def _cores_from_proc_cpuinfo():
    # the kernel's other account of the topology: (physical id, core id) per processor
    cores, processor, package = set(), None, '0'
    allowed = os.sched_getaffinity(0)
    with open('/proc/cpuinfo') as f:
        for line in f:
            key, _, value = (part.strip() for part in line.partition(':'))
            if key == 'processor':
                processor, package = int(value), '0'
            elif key == 'physical id':
                package = value
            elif key == 'core id' and processor in allowed:
                cores.add((package, value))
    return len(cores)


def test_importing_the_package_gives_mxnet_one_thread_per_physical_core():
    # MXNet alone would take half the logical CPUs on x86 (one thread on a 2-core VM)
    if cgroup_cpu_limit() or not _cores_from_proc_cpuinfo():
        pytest.skip('a CPU quota, or /proc/cpuinfo without core ids (not x86)')
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS')}
    out = subprocess.run([sys.executable, '-c', 'import os, gluon_deeplab, mxnet; '
                          'print(os.environ["OMP_NUM_THREADS"])'],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == _cores_from_proc_cpuinfo()
