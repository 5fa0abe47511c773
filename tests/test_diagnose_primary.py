from atlas_builder.diagnose import choose_primary
from atlas_builder.records import Diagnosis


def make(diagnoser, kind, explains_fully=False):
    return Diagnosis("quiz", "alpha", "q1", diagnoser, kind, title=diagnoser, summary="", explains_fully=explains_fully)


def test_primary_prefers_full_check_over_judge():
    judge = make("openai/judge", "judge")
    full = make("check:empty-output", "check", explains_fully=True)

    assert choose_primary([judge, full]) is full


def test_primary_prefers_judge_over_partial_check():
    partial = make("check:arithmetic-slip", "check")
    judge = make("openai/judge", "judge")

    assert choose_primary([partial, judge]) is judge


def test_primary_uses_partial_check_alone():
    partial = make("check:arithmetic-slip", "check")

    assert choose_primary([partial]) is partial


def test_primary_ignores_judge_failures():
    assert choose_primary([make("openai/judge", "judge-failure")]) is None


def test_accidental_pass_kept_out_of_failures(tmp_path):
    from atlas_factory import write_atlas

    from atlas_builder.diagnose import diagnose
    from atlas_builder.results import load_results

    write_atlas(tmp_path, {("quiz", "alpha"): [
        {"id": "q1", "input": "Pick A or B.\nA. cat\nB. dog", "output": "The answer is (A).", "score": 1, "reference": ["B", "dog"]},
        {"id": "q2", "input": "Pick A or B.\nA. cat\nB. dog", "output": "", "score": 0, "reference": ["B", "dog"]},
    ]})

    diagnoses = diagnose(load_results(tmp_path))

    assert [item.instance_id for item in diagnoses.accidental_passes] == ["q1"]
    assert set(diagnoses.primary) == {("quiz", "alpha", "q2")}
    assert diagnoses.primary[("quiz", "alpha", "q2")].diagnoser == "check:empty-output"
