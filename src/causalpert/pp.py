"""Public namespace ``causalpert.pp`` (preprocessing, scanpy style): ``cp.pp.featurize_smiles``."""

from .data.smiles import SmilesFeaturizer, featurize_smiles

__all__ = ["SmilesFeaturizer", "featurize_smiles"]
