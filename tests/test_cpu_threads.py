"""MXNet's OpenMP thread count: one per physical core (cpu_threads.py)."""
import os
import subprocess
import sys

from gluon_deeplab.cpu_threads import cgroup_cpu_limit, physical_cores, set_default_threads


def _fake_sysfs(root, topology):
    for cpu, (package, core) in topology.items():
        folder = root / ('cpu%d' % cpu) / 'topology'
        folder.mkdir(parents=True)
        (folder / 'physical_package_id').write_text('%d\n' % package)
        (folder / 'core_id').write_text('%d\n' % core)
    return str(root)


def test_physical_cores_counts_hyper_threads_once(tmp_path):
    # 2 packages x 2 cores x 2 threads; and a machine without SMT
    smt = _fake_sysfs(tmp_path / 'smt', {cpu: (cpu // 4, (cpu // 2) % 2) for cpu in range(8)})
    assert physical_cores(range(8), smt) == 4
    assert physical_cores([0, 1], smt) == 1  # siblings of one core
    flat = _fake_sysfs(tmp_path / 'flat', {0: (0, 0), 1: (0, 1)})
    assert physical_cores([0, 1], flat) == 2
    assert physical_cores([0, 1, 2], str(tmp_path / 'missing')) == 3  # unreadable: CPUs


def test_set_default_threads_leaves_the_user_s_choice_alone():
    assert set_default_threads({'OMP_NUM_THREADS': '3'}, modules={}) is None
    assert set_default_threads({'MXNET_OMP_MAX_THREADS': '3'}, modules={}) is None
    assert set_default_threads({}, modules={'mxnet': None}) is None  # too late to matter
    environ = {}
    assert set_default_threads(environ, modules={}) == environ['OMP_NUM_THREADS']


def test_cgroup_cpu_limit_reads_v2_and_v1_quotas(tmp_path):
    v2 = tmp_path / 'v2'
    v2.mkdir()
    (v2 / 'cpu.max').write_text('150000 100000\n')  # docker --cpus 1.5
    assert cgroup_cpu_limit(str(v2)) == 2
    (v2 / 'cpu.max').write_text('max 100000\n')
    assert cgroup_cpu_limit(str(v2)) is None
    v1 = tmp_path / 'v1' / 'cpu'
    v1.mkdir(parents=True)
    (v1 / 'cpu.cfs_period_us').write_text('100000\n')
    (v1 / 'cpu.cfs_quota_us').write_text('300000\n')
    assert cgroup_cpu_limit(str(tmp_path / 'v1')) == 3
    (v1 / 'cpu.cfs_quota_us').write_text('-1\n')
    assert cgroup_cpu_limit(str(tmp_path / 'v1')) is None
    assert cgroup_cpu_limit(str(tmp_path / 'none')) is None


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
    return len(cores) or len(allowed)


def test_importing_the_package_gives_mxnet_one_thread_per_physical_core():
    # MXNet alone would take half the logical CPUs on x86 (one thread on a 2-core VM)
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS')}
    out = subprocess.run([sys.executable, '-c', 'import os, gluon_deeplab, mxnet; '
                          'print(os.environ["OMP_NUM_THREADS"])'],
                         env=env, capture_output=True, text=True, check=True).stdout
    limit = cgroup_cpu_limit()
    cores = _cores_from_proc_cpuinfo()
    assert int(out) == (min(cores, limit) if limit else cores)
