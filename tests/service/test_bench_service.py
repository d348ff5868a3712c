from restore.api.bench import run_service_bench


def test_service_bench_measures_the_real_service(rdb):
    rows, memory = run_service_bench(jobs=3, threads=1, sizes={"tiny 64x48": (64, 48)})
    (row,) = rows
    assert row["jobs"] == 3 and row["jobs_per_s"] > 0
    assert row["e2e_p50_ms"] > row["overhead_p50_ms"] > 0 and row["bare_pipeline_ms"] > 0
    assert row["e2e_p99_ms"] >= row["e2e_p50_ms"] > row["submit_p50_ms"] > 0
    assert all(before > 20 and after > 20 for before, after in memory.values())  # read from /proc, in MB
