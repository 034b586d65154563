"""The linear algebra of the implicit methods: LU factors of a batch of Newton matrices, dense
(torch) or sparse (scipy's SuperLU), and Jacobians from a sparsity pattern.

A sparsity pattern (``solve(..., jac_sparsity=S)``, as scipy's ``solve_ivp``) says which
entries of ``∂f/∂y`` may be nonzero. It makes two things cheap for large systems:

* the Jacobian: rows that share no column are computed together, so autograd makes one
  reverse pass per *colour* of rows (a tridiagonal pattern: 3) instead of one per row
  (Curtis, Powell & Reid, *J. Inst. Maths Applics* 13 (1974) 117–119, applied to rows);
* the LU factors: on the CPU, each sample's Newton matrices are factorised by SuperLU
  (``scipy.sparse.linalg.splu``, fill-reducing column order COLAMD) instead of densely, and
  solved per sample. torch has no sparse LU, so on other devices the factors stay dense.

A pattern that misses a nonzero entry gives a wrong Jacobian, as in scipy; Newton then
converges slowly or not at all, and the step sizes shrink, but accepted steps still pass the
error test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from .base import SampleState


@dataclass(frozen=True, kw_only=True)
class DenseLU(SampleState):
    """LU factors of a batch of dense matrices ``(*batch, n, n)`` (``torch.linalg.lu_factor``)."""

    LU: torch.Tensor
    pivots: torch.Tensor

    @staticmethod
    def factor(M: torch.Tensor) -> DenseLU:
        LU, pivots = torch.linalg.lu_factor(M)
        return DenseLU(LU=LU, pivots=pivots)

    @property
    def shape(self) -> tuple:
        """The batch shape of the factorised matrices."""
        return tuple(self.pivots.shape[:-1])

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """``M⁻¹ b`` for right-hand sides ``b (*batch, n)``."""
        return torch.linalg.lu_solve(self.LU, self.pivots, b.unsqueeze(-1)).squeeze(-1)

    def put(self, index: torch.Tensor, values: DenseLU) -> DenseLU:
        """These factors with the batch rows ``index`` replaced by ``values``."""
        return DenseLU(LU=self.LU.index_put((index,), values.LU),
                       pivots=self.pivots.index_put((index,), values.pivots))


class SparseLU(SampleState):
    """LU factors of a batch of sparse matrices: one scipy ``SuperLU`` per matrix, in an
    object array of the batch shape; solves run per matrix on the CPU."""

    def __init__(self, factors: np.ndarray):
        self.factors = factors

    @property
    def shape(self) -> tuple:
        return self.factors.shape

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        values = b.detach().cpu().numpy()
        out = np.empty_like(values)
        for i in np.ndindex(self.factors.shape):
            out[i] = self.factors[i].solve(values[i])
        return torch.from_numpy(out).to(device=b.device)

    def take(self, rows: torch.Tensor) -> SparseLU:
        return SparseLU(self.factors[rows.cpu().numpy()])

    def put(self, index: torch.Tensor, values: SparseLU) -> SparseLU:
        factors = self.factors.copy()
        factors[index.cpu().numpy()] = values.factors
        return SparseLU(factors)


class Sparsity:
    """A Jacobian's sparsity pattern for ``n`` state components, with its row colouring and the
    pattern of the Newton matrices (the Jacobian's plus the diagonal) in compressed-column
    order.

    Parameters
    ----------
    pattern : array-like or scipy sparse matrix, shape ``(n, n)``
        Nonzero (or True) where ``∂fᵢ/∂yⱼ`` may be nonzero.
    n : int
        The number of state components it must match.
    """

    def __init__(self, pattern, n: int):
        if scipy.sparse.issparse(pattern):
            S = scipy.sparse.csr_matrix(pattern)
        else:
            if isinstance(pattern, torch.Tensor):
                pattern = pattern.detach().cpu().numpy()
            try:
                dense = np.asarray(pattern)
            except (TypeError, ValueError) as err:
                raise TypeError(f"`jac_sparsity` must be an (n, n) array, tensor or scipy "
                                f"sparse matrix; got {type(pattern).__name__}") from err
            if dense.dtype == object or not (np.issubdtype(dense.dtype, np.number)
                                             or dense.dtype == bool):
                raise TypeError(f"`jac_sparsity` must hold numbers or booleans; got dtype "
                                f"{dense.dtype}")
            S = scipy.sparse.csr_matrix(dense)
        if S.shape != (n, n):
            raise ValueError(f"`jac_sparsity` must have shape (n, n) = ({n}, {n}) for states "
                             f"of {n} components; got shape {S.shape}")
        S.eliminate_zeros()
        S = (S != 0).astype(np.int8).tocsr()
        S.sort_indices()
        self.n = n
        self.nnz = S.nnz
        rows, cols = S.nonzero()
        self._rows, self._cols = rows, cols
        self.colours = _row_colouring(S)
        self.k = int(self.colours.max()) + 1 if n else 0
        newton = (S + scipy.sparse.identity(n, dtype=np.int8, format="csr")).tocsc()
        newton.sort_indices()
        self._indices, self._indptr = newton.indices, newton.indptr
        self._lu_cols = np.repeat(np.arange(n), np.diff(newton.indptr))
        self._index = {}

    def __repr__(self) -> str:
        return f"Sparsity(n={self.n}, nnz={self.nnz}, colours={self.k})"

    def _on(self, device) -> dict:
        """Index tensors on ``device`` (cached)."""
        key = str(device)
        if key not in self._index:
            def as_long(x):
                return torch.as_tensor(np.asarray(x, dtype=np.int64), device=device)
            self._index[key] = {
                "rows": as_long(self._rows), "cols": as_long(self._cols),
                "colours": as_long(self.colours),
                "lu_rows": as_long(self._indices), "lu_cols": as_long(self._lu_cols)}
        return self._index[key]

    def seeds(self, fy: torch.Tensor) -> torch.Tensor:
        """One reverse-mode seed per colour, ``(k, *fy.shape)``: ones on that colour's rows."""
        index = self._on(fy.device)
        onehot = torch.zeros(self.k, self.n, dtype=fy.dtype, device=fy.device)
        onehot[index["colours"], torch.arange(self.n, device=fy.device)] = 1
        return onehot.reshape(self.k, *([1] * (fy.ndim - 1)), self.n).expand(self.k, *fy.shape)

    def expand(self, compressed: torch.Tensor) -> torch.Tensor:
        """The Jacobian ``(*batch, n, n)`` from the colours' vector–Jacobian products
        ``(k, *batch, n)``: entry ``(i, j)`` of the pattern is product ``colour(i)`` at ``j``."""
        index = self._on(compressed.device)
        rows, cols = index["rows"], index["cols"]
        by_colour = compressed.movedim(0, -2)                      # (*batch, k, n)
        J = compressed.new_zeros((*by_colour.shape[:-2], self.n, self.n))
        J[..., rows, cols] = by_colour[..., index["colours"][rows], cols]
        return J

    def factor(self, shift: torch.Tensor, J: torch.Tensor, scale=1.0) -> SparseLU:
        """SuperLU factors of ``shift·I − scale·J`` for ``J (*batch, n, n)`` and ``shift``,
        ``scale`` broadcasting against it as ``(..., 1, 1)``, from ``J``'s entries on the
        Newton pattern (entries outside it are taken as zero): no dense matrix is formed."""
        index = self._on(J.device)
        rows, cols = index["lu_rows"], index["lu_cols"]
        diagonal = (rows == cols).to(J.dtype)
        def per_entry(x):               # (..., 1, 1) -> (..., 1), against (..., nnz)
            return x[..., 0] if isinstance(x, torch.Tensor) and x.ndim else x
        values = per_entry(shift) * diagonal - per_entry(scale) * J[..., rows, cols]
        values = values.detach().cpu().numpy()
        factors = np.empty(values.shape[:-1], dtype=object)
        for i in np.ndindex(factors.shape):
            A = scipy.sparse.csc_matrix((values[i], self._indices, self._indptr),
                                        shape=(self.n, self.n))
            factors[i] = scipy.sparse.linalg.splu(A, permc_spec="COLAMD")
        return SparseLU(factors)


def _row_colouring(S: scipy.sparse.csr_matrix) -> np.ndarray:
    """A greedy colouring of the rows of ``S`` such that rows of one colour share no column
    (their entries can be read from one vector–Jacobian product)."""
    n = S.shape[0]
    conflicts = (S @ S.T).tocsr()
    colours = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        neighbours = conflicts.indices[conflicts.indptr[i]:conflicts.indptr[i + 1]]
        used = set(colours[neighbours].tolist())
        colour = 0
        while colour in used:
            colour += 1
        colours[i] = colour
    return colours


def shifted_lu(shift, J: torch.Tensor, sparsity: Sparsity | None = None,
               scale=1.0) -> DenseLU | SparseLU:
    """LU factors of ``shift·I − scale·J`` for ``J (*batch, n, n)``, with ``shift`` and ``scale``
    numbers or tensors broadcasting as ``(..., 1, 1)``: sparse (SuperLU) when a pattern is
    given and ``J`` is on the CPU, dense otherwise."""
    if sparsity is not None and J.device.type == "cpu":
        return sparsity.factor(shift, J, scale)
    # shift·I − scale·J in two passes over the memory: −scale·J, then the diagonal.
    dtype = torch.result_type(shift, J)
    if isinstance(scale, torch.Tensor):
        dtype = torch.promote_types(dtype, torch.result_type(scale, J))
    shift = torch.as_tensor(shift, dtype=dtype, device=J.device)
    shape = torch.broadcast_shapes(shift.shape, torch.as_tensor(scale).shape, J.shape)
    M = torch.empty(shape, dtype=dtype, device=J.device)
    torch.mul(J.expand(shape), -scale, out=M)
    M.diagonal(dim1=-2, dim2=-1).add_(shift[..., 0] if shift.ndim >= 2 else shift)
    return DenseLU.factor(M)
