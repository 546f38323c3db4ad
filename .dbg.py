from contracts import load
from conformance.runner import Runner, PythonAdapter
from conformance.scenarios import catalogue
from conformance.protocol import Capabilities
from examples.broken import by_name
b = by_name("aivideoapi-ignores-callbacks")
caps = Capabilities(webhooks=True)
sc = [s for s in catalogue(load("aivideoapi"), caps) if s.kind == "webhook"][:1]
with Runner("aivideoapi", PythonAdapter(b.generate), caps) as r:
    res = r.run_all(sc)
x = res[0]
print(x.applied)
for i, e in enumerate(x.run.journal): print(i, e.get("direction"), e.get("operation"), e.get("event"), e.get("outcome"), e.get("time"), e.get("state"))
