from restore.api.bench import run_service_bench


def test_service_bench_measures_the_real_service(rdb):
    rows = run_service_bench("redis://127.0.0.1:6379/12", jobs=3, threads=1, sizes={"tiny 64x48": (64, 48)})
    (row,) = rows
    assert row["jobs"] == 3 and row["jobs_per_s"] > 0
    assert row["e2e_median_ms"] > row["overhead_median_ms"] > 0 and row["bare_pipeline_ms"] > 0
