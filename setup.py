from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("fcap/__init__.py").read_text(), version)

setup(
    name="fcap",
    version=version["__version__"],
    description="FrozenCaptioner: video captioning with frozen LMs and gated adapters "
                "(reference implementation of Lialin et al.)",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fcap", "fcap.*", "registry", "registry.*"]),
    include_package_data=True,
    # **/*.yaml ships fcap/builtin/ (the tiny and paper profiles, the paper's base setup):
    # `--profile tiny` and `base: fcap://...` work from a wheel install too
    package_data={"fcap": ["**/*.yaml", "**/*.md"]},
    install_requires=[
        "torch>=2.5",  # torch.serialization.safe_globals (fcap.train.checkpoint); transformers 5.4 needs 2.4
        "transformers>=5.4,<6",  # fcap.models.TRANSFORMERS_REQUIREMENT (checked at import)
        "deepspeed>=0.15",
        "decord>=0.6.0",
        "submitit>=1.5",
        "tensorboard>=2.14",
        "pycocoevalcap>=1.2",
        "pyyaml>=6.0",
        "safetensors>=0.4",
        "tokenizers>=0.15",
        "pillow>=9",
        "av>=12",  # PyAV: writes the shapes world's mp4/avi (decord reads them)
        "numpy",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-timeout",
            "scikit-video",
            "scikit-image",
        ],
    },
    entry_points={"console_scripts": ["fcap-run=fcap.cli:main"]},
)
