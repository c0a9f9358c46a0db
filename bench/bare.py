"""The ceiling: a bare FastAPI endpoint returning a small fixed JSON object.

Served exactly like the app (uvicorn, one worker, same loop and HTTP parser), so the ratio of a
scenario's throughput to this one's holds across machines.
"""

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/bare")
async def bare() -> dict[str, object]:
    return {"id": 1, "status": "ok", "service": "bare"}
