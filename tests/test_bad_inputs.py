"""Every kind of bad input gets a clear error that names what is wrong, and nothing is written."""

import re
import shutil

import pytest
import torch
from test_zoo import manifest_of, read_weights, rewrite_weights, write_manifest


def fails(cli, *args, env=None):
    proc = cli(*args, ok=False, env=env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert not (cli.cwd / "wmplat-results").exists(), "nothing written on error"
    return proc.stderr


def test_an_unknown_method_suggests_the_closest_name(cli):
    err = fails(cli, "evaluate", "--method", "noize")
    assert "unknown method 'noize'; did you mean 'noise'?" in err


def test_an_unknown_zoo_suggests_the_closest_name(cli):
    err = fails(cli, "evaluate", "--method", "noise", "--zoo", "digits-mpl")
    assert "unknown zoo 'digits-mpl'; did you mean 'digits-mlp'?" in err


@pytest.mark.parametrize("method, message", [
    ("wrong-shape", "returned samples of shape [4, 2411], expected [4, 2410]"),
    ("nan-weights", "returned 1 non-finite values (NaN or inf) in 1 of 4 samples"),
    ("int-weights", "returned samples of dtype torch.int64, expected floating-point weights"),
    ("huge-weights", "returned 4 values beyond the limit |w| <= 1e+06 (largest |w| 1e+38) "
                     "in 2 of 4 samples"),
    ("huge-doubles", "returned 1 values beyond the limit |w| <= 1e+06 (largest |w| 1e+300) "
                     "in 1 of 4 samples"),
    ("peek-heldout", "the heldout split is not available to methods"),
    ("crash-in-fit", "failed: RuntimeError: out of coffee"),
])
def test_a_misbehaving_method_is_named_with_what_it_did(cli, default_zoo, method, message):
    err = fails(cli, "evaluate", "--method", method, "--samples", "4")
    assert f"method '{method}' (wmplat-misbehaving 0.1.0)" in err
    assert message in err


def test_debug_shows_the_traceback(cli, default_zoo):
    proc = cli("--debug", "evaluate", "--method", "crash-in-fit", "--samples", "4", ok=False)
    assert "Traceback" in proc.stderr and "out of coffee" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--method", "noise", "--set", "sigma=abc"], "bad option for baseline 'noise': sigma:"),
    (["--method", "noise", "--set", "sigma=-1"], "sigma: Input should be greater than"),
    (["--method", "noise", "--set", "bogus=1"], "bogus: Extra inputs are not permitted"),
    (["--method", "noise", "--set", "sigma"], "--set expects key=value, got 'sigma'"),
    (["--method", "copycat", "--set", "x=1"], "method 'copycat' takes no options"),
    (["--method", "noise", "--samples", "0"], "--samples must be at least 1"),
])
def test_a_bad_option_is_named(cli, args, message):
    assert message in fails(cli, "evaluate", *args)


@pytest.mark.parametrize("option, value, message", [
    ("--samples", "1000000000", "--samples must be at most 100000, got 1000000000"),
    ("--seed", "18446744073709551616", "--seed must be at most 4294967295 (2**32 - 1"),
    ("--seed", "-1", "--seed must be at least 0, got -1"),
])
def test_an_option_out_of_range_is_refused_before_the_zoo_loads(cli, option, value, message):
    # a zoo that does not exist: were it opened first, its error would come instead
    err = fails(cli, "evaluate", "--method", "copycat", "--zoo", str(cli.cwd / "no-zoo"),
                option, value)
    assert err.count("\n") == 1 and err.startswith(f"error: {message}")


@pytest.mark.parametrize("keyword, value, message", [
    ("n_samples", 10**9, "--samples must be at most 100000"),
    ("n_samples", 0, "--samples must be at least 1"),
    ("n_samples", 2.5, "--samples must be an integer, got 2.5"),
    ("seed", 2**64, "--seed must be at most 4294967295"),
    ("seed", True, "--seed must be an integer, got True"),
])
def test_the_python_api_refuses_the_same_ranges(tmp_path, keyword, value, message):
    from wmplat.errors import ConfigError
    from wmplat.evaluation.runner import evaluate

    with pytest.raises(ConfigError, match=re.escape(message)):
        evaluate("copycat", zoo=str(tmp_path / "no-zoo"), results_dir=tmp_path / "results",
                 **{keyword: value})
    assert not (tmp_path / "results").exists()


def test_the_largest_seed_is_taken(cli, default_zoo):
    cli("evaluate", "--method", "copycat", "--samples", "4", "--seed", str(2**32 - 1))
    assert list((cli.cwd / "wmplat-results").rglob("*-seed4294967295-n4/result.json"))


def test_samples_that_would_not_fit_the_memory_limit_are_refused_before_the_method_runs(
        cli, default_zoo):
    # 2410 parameters x 4 bytes: 27 samples fit 0.25 MB; crash-in-fit would fail if it ran
    err = fails(cli, "evaluate", "--method", "crash-in-fit", "--samples", "28",
                env={"WMPLAT_SAMPLE_MEMORY_MB": "0.25"})
    assert err.count("\n") == 1 and err.startswith("error: --samples 28: 28 samples of zoo "
                                                    "'digits-mlp' (2410 parameters) take "), err
    assert "over the limit of 0.25 MB on samples (WMPLAT_SAMPLE_MEMORY_MB); at most 27 fit" in err
    cli("evaluate", "--method", "replica", "--samples", "27",
        env={"WMPLAT_SAMPLE_MEMORY_MB": "0.25"})


def test_a_non_integer_option_is_caught_by_the_command_line(cli):
    err = fails(cli, "evaluate", "--method", "noise", "--samples", "many")
    assert "'many' is not a valid integer" in err


def test_a_metric_returning_nan_is_named_and_nothing_is_written(cli, install_plugin,
                                                                default_zoo):
    env = install_plugin("wmplat-badmetric")
    proc = cli("evaluate", "--method", "replica", "--samples", "4", env=env, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert ("metric 'nan-summary' (wmplat-badmetric 0.1.0) returned summary 'nan_summary' = "
            "nan; expected a finite number or None") in proc.stderr
    assert not (cli.cwd / "wmplat-results").exists()


# --- zoos ----------------------------------------------------------------------------------

@pytest.fixture
def zoo_copy(default_zoo, tmp_path):
    folder = tmp_path / "my-zoo"
    shutil.copytree(default_zoo, folder)
    return folder


@pytest.mark.parametrize("quality", ["NaN", "Infinity", "-Infinity"])
def test_a_quality_that_is_not_a_finite_number_is_refused(cli, zoo_copy, quality):
    manifest_path = zoo_copy / "manifest.json"
    manifest = manifest_of(zoo_copy)
    record = manifest["models"][7]
    record["quality"] = float(quality)          # json writes these as NaN, Infinity
    write_manifest(zoo_copy, manifest)
    assert quality in manifest_path.read_text()
    err = fails(cli, "zoo", "info", str(zoo_copy))
    assert err.count("\n") == 1 and err.startswith(f"error: {manifest_path}: models.7: ")
    assert f"model {record['id']!r}: quality must be a finite number" in err


def zoo_info_fails(cli, folder):
    err = fails(cli, "zoo", "info", str(folder))
    assert err.count("\n") == 1 and err.startswith(f"error: {folder / 'weights.safetensors'}: ")
    return err


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.float16,
                                   torch.bfloat16, torch.float64])
def test_zoo_weights_that_are_not_float32_are_refused(cli, zoo_copy, dtype):
    tensors = read_weights(zoo_copy)
    tensors["fc2.bias"] = (tensors["fc2.bias"] > 0).to(dtype)
    rewrite_weights(zoo_copy, tensors)
    err = zoo_info_fails(cli, zoo_copy)
    name = str(dtype).removeprefix("torch.")
    assert f"tensor 'fc2.bias' has dtype {name}; zoo weights must be float32" in err


def test_zoo_weights_beyond_the_limit_are_refused(cli, zoo_copy):
    tensors = read_weights(zoo_copy)
    tensors["fc1.weight"][5, 0, 0] = 1e38          # finite in float32
    tensors["fc1.weight"][9, 1, 1] = -2e6
    rewrite_weights(zoo_copy, tensors)
    err = zoo_info_fails(cli, zoo_copy)
    assert "tensor 'fc1.weight' has 2 weights beyond the limit |w| <= 1e+06 (largest " \
           "|w| 1e+38)" in err


def test_zoo_weights_at_the_limit_are_read(cli, zoo_copy):
    tensors = read_weights(zoo_copy)
    tensors["fc1.weight"][5, 0, 0] = -1e6
    rewrite_weights(zoo_copy, tensors)
    assert "params   2,410" in cli("zoo", "info", str(zoo_copy)).stdout
