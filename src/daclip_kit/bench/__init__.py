"""Benchmark harness reproducing the paper's Tables 2-12 (``python -m daclip_kit.bench``).

* :mod:`.spec` - typed table specs (``TableSpec``, ``RowSpec``, ``ColumnSpec``, ``MetricProtocol``);
* :mod:`.tables` - the paper's tables with every reported number;
* :mod:`.runner` - decides what can run and measures it (no console output);
* :mod:`.complexity` - Table 8 (parameters, GMACs, runtime);
* :mod:`.report` - rich tables, JSON results and ``--compare``;
* :mod:`.plot` - Figure 6 radar plots.
"""
