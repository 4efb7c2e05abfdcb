"""Lint the whole package the way ament_flake8 would (settings in setup.cfg)."""

from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]


def test_flake8_clean():
    targets = ['smmcl_core', 'smmcl_ros', 'launch', 'test', 'benchmarks', 'setup.py']
    result = subprocess.run([sys.executable, '-m', 'flake8', *targets], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'
