"""Elementwise fusion with generated code.

Pipeline, one module per stage:

- ``cluster``: find maximal convex clusters of elementwise nodes;
- ``spec``: describe a cluster without names (``FusionSpec``: the cache key
  and the reference semantics);
- ``lower``: inline rows written with other rows (``sigmoid``,
  ``softplus``) and share equal steps;
- (the NumPy program of a spec, its generated source and its blocked runs
  are the NumPy backend's: ``tracegrad/backend/numpy/``);
- ``cuda``: generate the source of one ``cupy.ElementwiseKernel`` and launch
  it;
- ``cache``: the bounded spec-keyed cache (``SpecCache``) that
  ``backend/numpy`` and ``cuda`` keep their programs and kernel sources in;
- ``op``: ``FusedElemwise``, the graph op running a cluster;
- ``rewrite``: ``fuse_outputs(outputs)`` on plain graphs and
  ``fuse(fgraph)`` on a ``FunctionGraph``.
"""
from tracegrad.fuse.cluster import Cluster, find_clusters, is_fusable  # noqa: F401
from tracegrad.fuse.spec import FusionSpec, spec_from_cluster  # noqa: F401
from tracegrad.fuse.op import FusedElemwise, expand  # noqa: F401
from tracegrad.fuse.rewrite import fuse, fuse_outputs, fused_node  # noqa: F401

__all__ = ["Cluster", "find_clusters", "is_fusable", "FusionSpec", "spec_from_cluster",
           "FusedElemwise", "expand", "fuse", "fuse_outputs", "fused_node"]
