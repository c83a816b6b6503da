"""Maps the top-level code folders onto the ``trident`` namespace.

``rtl/`` imports as ``trident.rtl``, ``golden/`` as ``trident.golden`` and so on, so the
repository keeps the layout promised in DESIGN.md while users import one package.
"""
from setuptools import find_packages, setup

CODE_FOLDERS = ("rtl", "golden", "verify", "fpga", "sw")

package_dir = {"trident": "trident"}
packages = ["trident"]
for folder in CODE_FOLDERS:
    package_dir[f"trident.{folder}"] = folder
    packages.append(f"trident.{folder}")
    packages += [f"trident.{folder}.{sub}" for sub in find_packages(folder)]

setup(package_dir=package_dir, packages=packages,
      package_data={"trident.fpga": ["boards/*"], "trident.golden.kernels": ["*.cpp", "*.h"]})
