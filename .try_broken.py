import time
from contracts import load
from conformance.runner import Runner, PythonAdapter
from conformance.scenarios import catalogue
from examples.broken import CATALOGUE
t0=time.time()
cats = {}
for b in CATALOGUE:
    t=time.time()
    sc = [s for s in catalogue(load(b.provider)) if not b.kinds or s.kind in b.kinds]
    with Runner(b.provider, PythonAdapter(b.generate)) as r:
        res = r.run_all(sc)
    fails = {f.check for x in res for f in x.failures}
    print(f"{'CAUGHT' if b.catches in fails else 'MISSED'} {b.name:34} {b.catches:26} {len(sc):3} sc {time.time()-t:.2f}s other={sorted(fails - {b.catches})}")
print("total", time.time()-t0)
