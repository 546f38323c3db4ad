import time, httpx, json
from conformance.server import ServerThread, Harness
h = Harness("pixazo")
with ServerThread() as srv:
    srv.use(h)
    c = httpx.Client()
    r = c.post(srv.base_url + "/veo31f/v1/veo-3.1-fast/generate", json={"prompt": "x"}, headers={"Ocp-Apim-Subscription-Key": "k"})
    jid = r.json()["request_id"]
    t = time.perf_counter()
    for _ in range(20):
        c.get(srv.base_url + f"/v2/requests/status/{jid}", headers={"Ocp-Apim-Subscription-Key": "k"})
    print("status per req ms", (time.perf_counter() - t) / 20 * 1000)
    t = time.perf_counter()
    for _ in range(20):
        c.post(srv.base_url + "/_veomock/clock", json={"advance": 1})
    print("clock per req ms", (time.perf_counter() - t) / 20 * 1000)
