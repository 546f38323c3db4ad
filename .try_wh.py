from contracts import load
from conformance.runner import Runner, PythonAdapter
from conformance.scenarios import catalogue
from conformance.protocol import Capabilities
import examples.clients.aivideoapi as mod
caps = Capabilities(webhooks=True)
sc = [s for s in catalogue(load("aivideoapi"), caps) if s.kind == "webhook"]
with Runner("aivideoapi", PythonAdapter(mod.generate), caps) as r:
    res = r.run_all(sc)
for x in res:
    print(x.scenario.id, x.passed, x.applied[-3:], [ (e.get("event"), e.get("outcome"), e.get("copy")) for e in x.run.webhooks()], len(x.run.polls(x.run.jobs[0])) if x.run.jobs else None)
    for f in x.failures: print(f.render())
