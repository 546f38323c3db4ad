import cProfile, pstats
from contracts import load
from conformance.runner import Runner, PythonAdapter
from conformance.scenarios import catalogue
import examples.clients.pixazo as mod
sc = catalogue(load("pixazo"))
with Runner("pixazo", PythonAdapter(mod.generate)) as r:
    cProfile.run("r.run_all(sc)", "/tmp/prof.out")
p = pstats.Stats("/tmp/prof.out"); p.sort_stats("cumulative").print_stats(40)
