"""SMILES → Morgan fingerprint features (RDKit, imported lazily), with a spec saved in models.

A model fitted with a ``SmilesFeaturizer`` keeps it (``model.featurizer_``, saved in the
checkpoint JSON as ``to_dict()``), so it can featurise a new SMILES string at predict time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

INSTALL_HINT = 'pip install "causalpert[chem]"'


def _rdkit():
    """``(Chem, rdFingerprintGenerator, BlockLogs)`` or a one-line ImportError with the fix."""
    try:
        from rdkit import Chem
        from rdkit.Chem import rdFingerprintGenerator
        from rdkit.rdBase import BlockLogs
    except ImportError:
        raise ImportError(f"SMILES features need RDKit: {INSTALL_HINT}") from None
    return Chem, rdFingerprintGenerator, BlockLogs


def _names_and_smiles(smiles, names) -> tuple[list[str], list[str]]:
    """(row names, SMILES strings) from a string, a sequence, a Series or a name → SMILES map."""
    if isinstance(smiles, str):
        smiles = [smiles]
    if isinstance(smiles, pd.Series):
        smiles = smiles.to_dict()
    if isinstance(smiles, Mapping):
        keys, smiles = list(smiles.keys()), list(smiles.values())
        names = keys if names is None else names
    smiles = list(smiles)
    names = list(smiles) if names is None else [str(n) for n in names]
    if len(names) != len(smiles):
        raise ValueError(f"got {len(names)} names for {len(smiles)} SMILES: give one name each")
    return names, smiles


@dataclass(frozen=True)
class SmilesFeaturizer:
    """Morgan (circular, ECFP-like) fingerprint bits of a molecule given as SMILES.

    Bit j of a molecule is 1 iff some atom environment of radius ≤ ``radius`` bonds hashes to
    j modulo ``n_bits`` (RDKit's Morgan generator; the features are these bits as floats).

    Attributes:
        radius: largest environment radius (2 ≈ ECFP4).
        n_bits: fingerprint length = number of feature columns.
    """

    radius: int = 2
    n_bits: int = 2048
    kind: ClassVar[str] = "morgan"

    def __post_init__(self):
        for name, low in (("radius", 0), ("n_bits", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")

    def molecules(self, smiles) -> list:
        """RDKit molecules of ``smiles`` (a list); ValueError naming the first invalid one."""
        Chem, _, BlockLogs = _rdkit()
        mols = []
        with BlockLogs():
            for s in smiles:
                mol = Chem.MolFromSmiles(s) if isinstance(s, str) and s.strip() else None
                if mol is None or mol.GetNumAtoms() == 0:
                    raise ValueError(f"invalid SMILES {s!r}: RDKit cannot parse it; fix the "
                                     "string (e.g. copy it from PubChem)")
                mols.append(mol)
        return mols

    def canonical(self, smiles) -> list[str]:
        """RDKit canonical SMILES of each string (equal for equal molecules)."""
        Chem, _, _ = _rdkit()
        return [Chem.MolToSmiles(m) for m in self.molecules(list(smiles))]

    def __call__(self, smiles, *, names=None) -> pd.DataFrame:
        """Fingerprints of ``smiles`` as a float DataFrame [n, n_bits].

        Args:
            smiles: one string, a sequence, a Series or a ``{name: SMILES}`` mapping.
            names: row names (default: the mapping's keys, else the SMILES strings).

        Returns:
            DataFrame indexed by name, columns ``morgan_0`` … ``morgan_{n_bits-1}``, values 0/1.
        """
        names, smiles = _names_and_smiles(smiles, names)
        _, generators, _ = _rdkit()
        gen = generators.GetMorganGenerator(radius=int(self.radius), fpSize=int(self.n_bits))
        mols = self.molecules(smiles)
        bits = np.zeros((len(mols), self.n_bits), dtype=np.float64)
        for i, mol in enumerate(mols):
            bits[i] = gen.GetFingerprintAsNumPy(mol)
        columns = [f"{self.kind}_{j}" for j in range(self.n_bits)]
        return pd.DataFrame(bits, index=pd.Index(names, dtype=object), columns=columns)

    def to_dict(self) -> dict:
        """JSON-serialisable spec, e.g. ``{"kind": "morgan", "radius": 2, "n_bits": 2048}``."""
        return {"kind": self.kind, "radius": int(self.radius), "n_bits": int(self.n_bits)}

    @classmethod
    def from_dict(cls, spec) -> SmilesFeaturizer:
        """Inverse of ``to_dict`` (also accepts a ``SmilesFeaturizer``)."""
        if isinstance(spec, cls):
            return spec
        if not isinstance(spec, Mapping) or spec.get("kind") != cls.kind:
            raise ValueError(f"featurizer spec must be a dict with kind={cls.kind!r}, got "
                             f"{spec!r}: e.g. SmilesFeaturizer(radius=2, n_bits=2048).to_dict()")
        unknown = set(spec) - {"kind", "radius", "n_bits"}
        if unknown:
            raise ValueError(f"unknown featurizer spec keys {sorted(unknown)}: use radius, n_bits")
        return cls(radius=int(spec.get("radius", 2)), n_bits=int(spec.get("n_bits", 2048)))


def featurize_smiles(smiles, *, names=None, radius: int = 2, n_bits: int = 2048) -> pd.DataFrame:
    """Morgan fingerprint bits of molecules given as SMILES (needs RDKit: ``causalpert[chem]``).

    Args:
        smiles: one string, a sequence, a Series or a ``{name: SMILES}`` mapping.
        names: row names (default: the mapping's keys, else the SMILES strings).
        radius: Morgan radius (2 ≈ ECFP4).
        n_bits: fingerprint length.

    Returns:
        float DataFrame [n, n_bits] of 0/1 bits, columns ``morgan_0`` …, index the names.

    Raises:
        ImportError: RDKit is missing (the message says how to install it).
        ValueError: a SMILES string is invalid (the message names it).

    Examples:
        >>> import causalpert as cp
        >>> cp.pp.featurize_smiles({"ethanol": "CCO"}).shape
        (1, 2048)
    """
    return SmilesFeaturizer(radius=radius, n_bits=n_bits)(smiles, names=names)


def resolve_featurizer(adata, featurizer, features) -> tuple:
    """The SMILES featurizer of a fit, the features it implies and the known molecules.

    ``featurizer`` (a ``SmilesFeaturizer`` or its dict) wins, else ``adata.uns["featurizer"]``;
    None of both → ``(None, features, {})``. Without a feature table (``features`` or
    ``adata.uns["perturbation_features"]``) the featurizer computes one from
    ``adata.uns["smiles"]`` ({perturbation: SMILES}).

    Returns:
        (featurizer or None, features or None, {canonical SMILES: perturbation name}).
    """
    spec = featurizer if featurizer is not None else adata.uns.get("featurizer")
    if spec is None:
        return None, features, {}
    featurizer = SmilesFeaturizer.from_dict(spec)
    smiles = adata.uns.get("smiles", {})
    if not isinstance(smiles, Mapping):
        raise ValueError("adata.uns['smiles'] must be a dict {perturbation: SMILES}")
    table = features if features is not None else adata.uns.get("perturbation_features")
    if table is None:
        if not smiles:
            raise ValueError("a SMILES featurizer needs adata.uns['smiles'] = {perturbation: "
                             "SMILES} or a feature table (features=)")
        features = table = featurizer(smiles)
    if np.shape(table)[1] != featurizer.n_bits:
        raise ValueError(f"the feature table has {np.shape(table)[1]} columns but the featurizer "
                         f"gives n_bits={featurizer.n_bits}: use the featurizer's own features")
    known = dict(zip(featurizer.canonical(smiles.values()), map(str, smiles), strict=True))
    return featurizer, features, known


def smiles_inputs(featurizer: SmilesFeaturizer, smiles, known: dict[str, str]) -> tuple:
    """(labels = the SMILES as given, names = the known perturbation name of each molecule or
    its SMILES, features [P, n_bits] as float64) for ``predict(smiles=...)``."""
    labels = [smiles] if isinstance(smiles, str) else list(smiles)
    table = featurizer(labels)
    canonical = featurizer.canonical(labels)
    names = [known.get(c, s) for c, s in zip(canonical, labels, strict=True)]
    return labels, names, table.to_numpy()
