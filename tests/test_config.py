"""Configs as data: tables, block notation, scaling rules, names."""
import math

import pytest

from effnet_tutorial.config import (EFFICIENTNET_B0_BLOCKS, EFFICIENTNETV2_BLOCKS, MODEL_NAMES, V1_COEFFICIENTS,
                                    FusedMBConvConfig, MBConvConfig, ModelConfig, canonical_name, get_model_config)
from effnet_tutorial.notation import format_block, format_blocks, parse_block, parse_blocks
from effnet_tutorial.scaling import compound_coefficients, round_filters, round_repeats

# The block strings exactly as the official code writes them (reference data):
# tensorflow/tpu models/official/efficientnet/efficientnet_builder.py (V1, note s11/s22) and
# google/automl efficientnetv2/effnetv2_configs.py (V2).
OFFICIAL_V1_B0 = [
    "r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
]
OFFICIAL_V2 = {
    "efficientnetv2-s": ["r2_k3_s1_e1_i24_o24_c1", "r4_k3_s2_e4_i24_o48_c1", "r4_k3_s2_e4_i48_o64_c1",
                         "r6_k3_s2_e4_i64_o128_se0.25", "r9_k3_s1_e6_i128_o160_se0.25",
                         "r15_k3_s2_e6_i160_o256_se0.25"],
    "efficientnetv2-m": ["r3_k3_s1_e1_i24_o24_c1", "r5_k3_s2_e4_i24_o48_c1", "r5_k3_s2_e4_i48_o80_c1",
                         "r7_k3_s2_e4_i80_o160_se0.25", "r14_k3_s1_e6_i160_o176_se0.25",
                         "r18_k3_s2_e6_i176_o304_se0.25", "r5_k3_s1_e6_i304_o512_se0.25"],
    "efficientnetv2-l": ["r4_k3_s1_e1_i32_o32_c1", "r7_k3_s2_e4_i32_o64_c1", "r7_k3_s2_e4_i64_o96_c1",
                         "r10_k3_s2_e4_i96_o192_se0.25", "r19_k3_s1_e6_i192_o224_se0.25",
                         "r25_k3_s2_e6_i224_o384_se0.25", "r7_k3_s1_e6_i384_o640_se0.25"],
    "efficientnetv2-xl": ["r4_k3_s1_e1_i32_o32_c1", "r8_k3_s2_e4_i32_o64_c1", "r8_k3_s2_e4_i64_o96_c1",
                          "r16_k3_s2_e4_i96_o192_se0.25", "r24_k3_s1_e6_i192_o256_se0.25",
                          "r32_k3_s2_e6_i256_o512_se0.25", "r8_k3_s1_e6_i512_o640_se0.25"],
}


def test_b0_table_is_the_official_one():
    assert parse_blocks(OFFICIAL_V1_B0) == EFFICIENTNET_B0_BLOCKS


@pytest.mark.parametrize("name", sorted(OFFICIAL_V2))
def test_v2_tables_are_the_official_ones(name):
    assert parse_blocks(OFFICIAL_V2[name]) == EFFICIENTNETV2_BLOCKS[name]
    assert format_blocks(EFFICIENTNETV2_BLOCKS[name]) == OFFICIAL_V2[name]


def test_block_notation_round_trips():
    for table in [EFFICIENTNET_B0_BLOCKS, *EFFICIENTNETV2_BLOCKS.values()]:
        for cfg in table:
            assert parse_block(format_block(cfg)) == cfg
    assert format_block(parse_block("r2_k3_s2_e6_i16_o24_se0.25")) == "r2_k3_s2_e6_i16_o24_se0.25"
    assert format_block(parse_block("r2_k3_s22_e6_i16_o24_se0.25")) == "r2_k3_s2_e6_i16_o24_se0.25"
    fused_se = FusedMBConvConfig(4, 3, 2, 24, 48, 4, se_ratio=0.25)
    assert parse_block(format_block(fused_se)) == fused_se


def test_block_kinds_and_fields():
    cfg = parse_block("r4_k3_s2_e4_i24_o48_c1")
    assert isinstance(cfg, FusedMBConvConfig) and cfg.se_ratio is None
    assert (cfg.expand_ratio, cfg.kernel_size, cfg.stride, cfg.in_channels, cfg.out_channels, cfg.num_repeats) \
        == (4, 3, 2, 24, 48, 4)
    assert isinstance(parse_block("r1_k3_s1_e1_i32_o16_se0.25"), MBConvConfig)


@pytest.mark.parametrize("bad", ["r2_k3_e6_i16_o24", "r2_k3_s2_e6_i16_o24_x5", "r2_k3_s12_e6_i16_o24",
                                 "r2_k4_s2_e6_i16_o24", "r0_k3_s2_e6_i16_o24", "r2_k3_s2_e6_i16_o24_c2"])
def test_bad_block_strings_raise_clear_errors(bad):
    with pytest.raises(ValueError, match="block string|must be|cannot parse"):
        parse_block(bad)


def test_round_filters_follows_the_official_rule():
    # divisor 8, round to nearest, never more than 10% down
    assert round_filters(32, 1.0) == 32
    assert round_filters(32, 1.1) == 32      # 35.2 -> 32 (9% down: allowed)
    assert round_filters(16, 1.1) == 16      # 17.6 -> 16
    assert round_filters(40, 1.1) == 48      # 44 -> 48 (ties go up)
    assert round_filters(1280, 2.0) == 2560
    assert round_filters(320, 1.4) == 448
    assert round_filters(4, 1.0) == 8        # never below the divisor
    assert round_filters(20, 1.1) == 24      # 22 -> 24
    for c in range(8, 700, 4):
        for w in (1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 3.1):
            r = round_filters(c, w)
            assert r % 8 == 0 and r >= 0.9 * c * w


def test_round_repeats_is_ceil():
    assert round_repeats(3, 1.1) == 4
    assert round_repeats(1, 3.1) == 4
    assert round_repeats(4, 1.0) == 4
    assert [round_repeats(n, 1.8) for n in (1, 2, 2, 3, 3, 4, 1)] == [2, 4, 4, 6, 6, 8, 2]


def test_compound_rule_differs_from_published_coefficients():
    c = compound_coefficients(1)
    assert math.isclose(c["flops_factor"], c["depth"] * c["width"] ** 2 * (c["resolution"] / 224) ** 2)
    assert abs(c["flops_factor"] - 2) < 0.1
    assert math.isclose(c["depth"], 1.2) and math.isclose(c["width"], 1.1)
    # The published B1-B7 were rounded by hand: at every phi, width or depth differs from the rule by > 1 %.
    for phi in range(1, 8):
        w, d, _, _ = V1_COEFFICIENTS[f"efficientnet-b{phi}"]
        rule = compound_coefficients(phi)
        assert abs(w / rule["width"] - 1) > 0.01 or abs(d / rule["depth"] - 1) > 0.01, phi


def test_names_are_normalised_and_unknown_names_list_valid_ones():
    assert canonical_name("EfficientNet_B3") == "efficientnet-b3"
    assert canonical_name("efficientnet_v2_s") == "efficientnetv2-s"
    with pytest.raises(ValueError) as err:
        canonical_name("efficientnet-b9")
    msg = str(err.value)
    assert "Did you mean" in msg and all(n in msg for n in MODEL_NAMES)
    with pytest.raises(ValueError, match="Did you mean 'efficientnetv2-s'"):
        canonical_name("effnetv2-s")


def test_model_config_validates():
    with pytest.raises(ValueError, match="do not chain"):
        ModelConfig("x", (MBConvConfig(1, 3, 1, 32, 16, 1), MBConvConfig(6, 3, 2, 24, 24, 1)))
    with pytest.raises(ValueError, match="dropout_rate"):
        ModelConfig("x", EFFICIENTNET_B0_BLOCKS, dropout_rate=1.5)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        MBConvConfig(6, 4, 1, 32, 16, 1)


@pytest.mark.parametrize("option, value, message", [
    ("num_classes", 0, "num_classes must be a positive int, got 0"),
    ("in_channels", 2.5, "in_channels must be a positive int, got 2.5"),
    ("image_size", -1, "image_size must be a positive int"),
    ("padding", "valid", "padding must be one of"),
    ("dropout_rate", 1.0, r"dropout_rate must be a number in \[0, 1\)"),
    ("drop_path_rate", -0.1, r"drop_path_rate must be a number in \[0, 1\)"),
    ("bn_momentum", 0.0, "bn_momentum"),
    ("bn_eps", 0, "bn_eps must be a positive finite number"),
    ("width_coefficient", float("nan"), "width_coefficient must be a positive finite number"),
])
def test_build_options_are_checked_once_in_the_config(option, value, message):
    with pytest.raises(ValueError, match=message):
        get_model_config("efficientnet-b0", **{option: value})


def test_config_options_unknown_and_contradictory():
    with pytest.raises(TypeError, match="unknown ModelConfig option.*num_class"):
        get_model_config("efficientnet-b0").with_options(num_class=10)
    with pytest.raises(ValueError, match="padding='symmetric' works for every size"):
        get_model_config("efficientnet-b0", image_size=224, padding="symmetric")


def test_stages_are_numbered_as_in_the_papers():
    b0 = get_model_config("efficientnet-b0")
    assert (b0.first_stage, b0.stage_numbers, b0.head_stage) == (1, (2, 3, 4, 5, 6, 7, 8), 9)
    assert b0.stage(6) == MBConvConfig(6, 5, 1, 80, 112, 3)      # Table 1: MBConv6, k5x5, 112 ch, 3 layers
    assert get_model_config("efficientnet-b4").stage(6).out_channels == 160
    v2s = get_model_config("efficientnetv2-s")
    assert (v2s.first_stage, v2s.stage_numbers, v2s.head_stage) == (0, (1, 2, 3, 4, 5, 6), 7)
    assert get_model_config("efficientnetv2-m").stage_numbers == (1, 2, 3, 4, 5, 6, 7)
    with pytest.raises(ValueError, match="block stages 2-8 .stage 1 is the stem, 9 the head.; got 1"):
        b0.stage(1)


def test_block_specs_expand_every_stage_once():
    for name in MODEL_NAMES:
        cfg = get_model_config(name)
        specs = cfg.block_specs()
        assert len(specs) == cfg.num_blocks
        for stage, number in zip(cfg.scaled_blocks(), cfg.stage_numbers):
            mine = [s for s in specs if s.stage == number]
            assert len(mine) == stage.num_repeats and [s.index for s in mine] == list(range(stage.num_repeats))
            assert mine[0].stride == stage.stride and mine[0].in_channels == stage.in_channels
            assert all(s.stride == 1 and s.in_channels == s.out_channels == stage.out_channels for s in mine[1:])
        assert [s.drop_path_rate for s in specs] == cfg.drop_path_rates()


def test_batch_norm_momentum_follows_the_official_code():
    # PyTorch momentum = 1 - TF momentum: 0.99 in tensorflow/tpu (V1), 0.9 in google/automl hparams.py (V2).
    assert {get_model_config(n).bn_momentum for n in MODEL_NAMES if n.startswith("efficientnet-")} == {0.01}
    assert {get_model_config(n).bn_momentum for n in MODEL_NAMES if n.startswith("efficientnetv2-")} == {0.1}


def test_scaled_tables():
    b7 = get_model_config("efficientnet-b7")
    assert [b.num_repeats for b in b7.scaled_blocks()] == [4, 7, 7, 10, 10, 13, 4]
    assert [b.out_channels for b in b7.scaled_blocks()] == [32, 48, 80, 160, 224, 384, 640]
    assert (b7.scaled_stem_channels, b7.scaled_head_channels, b7.resolution) == (64, 2560, 600)
    assert get_model_config("efficientnet-b0").num_blocks == 16
    rates = get_model_config("efficientnet-b0").drop_path_rates()
    assert rates[0] == 0 and math.isclose(rates[-1], 0.2 * 15 / 16)


@pytest.mark.parametrize("field", ["width_coefficient", "depth_coefficient", "bn_eps"])
def test_infinite_coefficients_are_refused_by_the_config(field):
    with pytest.raises(ValueError, match=f"{field} must be a positive finite number, got inf"):
        get_model_config("efficientnet-b0", **{field: float("inf")})
