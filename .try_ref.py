import time, sys
from contracts import load
from conformance.runner import Runner, PythonAdapter
from conformance.scenarios import catalogue
from conformance.protocol import Capabilities
import importlib
for p in sys.argv[1:]:
    mod = importlib.import_module(f"examples.clients.{p}")
    t=time.time()
    with Runner(p, PythonAdapter(mod.generate)) as r:
        res = r.run_all(catalogue(load(p)))
    bad=[f for x in res for f in x.failures]
    print(p, len(res), "scenarios", len(bad), "failures", round(time.time()-t,2),"s", sum(len(x.run.exchanges) for x in res), "requests")
    for f in bad[:8]: print(f.render())
