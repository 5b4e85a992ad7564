"""The D-GAN: shapes, one training step, conditional generation, the differentiable augmentation."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tumornb.gan import (  # noqa: E402
    DGAN,
    DIFF_AUGMENT_POLICY,
    build_discriminator,
    build_generator,
    diff_augment,
    from_uint8,
    to_uint8,
    truncated_noise,
)

SIDE = 32


def _real_batch(n=16, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, SIDE, SIDE), dtype=np.uint8)
    return from_uint8(images), rng.integers(0, n_classes, size=n).astype(np.int32)


def test_generator_and_discriminator_shapes():
    generator = build_generator(SIDE, 4, latent_dim=16, width=8)
    discriminator = build_discriminator(SIDE, 4, width=8)
    noise = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 0], np.int32)
    images = keras.ops.convert_to_numpy(generator([noise, labels]))
    assert images.shape == (5, SIDE, SIDE, 1)
    assert images.min() >= -1 and images.max() <= 1
    score, logits = discriminator([images, labels])
    assert keras.ops.convert_to_numpy(score).shape == (5, 1)
    assert keras.ops.convert_to_numpy(logits).shape == (5, 4)
    with pytest.raises(ValueError, match="power of two"):
        build_generator(48)


def test_uint8_round_trip():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    x = from_uint8(images)
    assert x.shape == (1, 16, 16, 1) and x.min() == -1 and x.max() == 1
    np.testing.assert_array_equal(to_uint8(x), images)


def test_diff_augment_is_seeded_varies_and_passes_gradients():
    x, _ = _real_batch(8)
    x = tf.constant(x)
    a = diff_augment(x, tf.constant([1, 2], tf.int64))
    b = diff_augment(x, tf.constant([1, 2], tf.int64))
    c = diff_augment(x, tf.constant([1, 3], tf.int64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.abs(a.numpy() - c.numpy()).mean() > 0.05
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(diff_augment(x, tf.constant([1, 2], tf.int64)))
    gradient = tape.gradient(total, x)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_diff_augment_policy_applies_only_the_named_transforms():
    x, _ = _real_batch(8)
    x = tf.constant(x)
    seed = tf.constant([1, 2], tf.int64)
    brightness = (diff_augment(x, seed, "brightness") - x).numpy()
    # Brightness alone adds one number per image: no pixel moved, none cut out.
    per_image = brightness.reshape(8, -1)
    np.testing.assert_allclose(per_image, per_image[:, :1].repeat(per_image.shape[1], axis=1), atol=1e-6)
    assert np.abs(per_image[:, 0]).max() > 0.01
    without_cutout = diff_augment(x, seed, "shift,brightness").numpy()
    full = diff_augment(x, seed).numpy()
    # Cutout sets a square of a quarter of the pixels to 0; without it far fewer are exactly 0.
    assert (full == 0).mean() > 0.2 > (without_cutout == 0).mean()
    np.testing.assert_array_equal(diff_augment(x, seed, "").numpy(), x.numpy())


def test_flip_mirrors_some_images_left_to_right_and_leaves_the_others():
    x, _ = _real_batch(16)
    flipped = diff_augment(tf.constant(x), tf.constant([1, 2], tf.int64), "flip").numpy()
    mirrored = np.array([np.array_equal(f, image[:, ::-1]) for f, image in zip(flipped, x, strict=True)])
    kept = np.array([np.array_equal(f, image) for f, image in zip(flipped, x, strict=True)])
    assert (mirrored ^ kept).all()  # each image is one or the other (random images are not symmetric)
    assert 0 < mirrored.sum() < len(x)
    assert "flip" not in DIFF_AUGMENT_POLICY.split(",")  # augment=True keeps DiffAugment's own policy


def test_an_unknown_diff_augment_transform_is_a_clear_error():
    with pytest.raises(ValueError, match="rotate"):
        DGAN(SIDE, 4, latent_dim=16, width=8, augment="shift,rotate")
    assert DGAN(SIDE, 4, latent_dim=16, width=8, augment=False).augment == ""
    assert DGAN(SIDE, 4, latent_dim=16, width=8, augment="shift").augment == "shift"


@pytest.mark.parametrize("n_classes", [4, 1])
def test_one_training_step_gives_finite_losses_and_changes_the_weights(n_classes):
    gan = DGAN(SIDE, n_classes, latent_dim=16, width=8, seed=0)
    gan.compile()
    before_g = [w.copy() for w in gan.generator.get_weights()]
    before_d = [w.copy() for w in gan.discriminator.get_weights()]
    before_ema = [w.copy() for w in gan.ema_generator.get_weights()]
    images, labels = _real_batch(16, n_classes)
    history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
    for key in ("d_loss", "g_loss"):
        assert np.isfinite(history[key][0])

    def changed(before, model):
        return max(np.abs(a - b).max() for a, b in zip(before, model.get_weights(), strict=True))

    assert changed(before_g, gan.generator) > 1e-6
    assert changed(before_d, gan.discriminator) > 1e-6
    # Average and generator start equal; after the first step the warm-up's decay is
    # (1 + 1) / (10 + 1), so the average moves 9/11 of the generator's step.
    expected = 9 / 11 * changed(before_g, gan.generator)
    assert changed(before_ema, gan.ema_generator) == pytest.approx(expected, rel=1e-3)


def test_the_auxiliary_class_loss_enters_the_discriminator_step_and_trains_its_class_head():
    """Check one step with and without the class loss, from equal weights and seeds.

    The adversarial part is then identical, so the discriminator's loss differs by exactly
    the class loss, and only with the loss on does the class head learn.
    """
    images, labels = _real_batch(16, 4)

    def one_step(class_weight, class_confidence=None):
        keras.utils.set_random_seed(0)
        gan = DGAN(
            SIDE, 4, latent_dim=16, width=8, augment=False, class_weight=class_weight,
            class_confidence=class_confidence, seed=0,
        )  # fmt: skip
        gan.compile()
        head = gan.discriminator.get_layer("class_logits").get_weights()[0].copy()
        history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
        return gan, head, {k: v[0] for k, v in history.items()}

    off, head_off, logs_off = one_step(0.0)
    on, head_on, logs_on = one_step(2.0)
    np.testing.assert_array_equal(head_on, head_off)
    assert logs_on["d_class_loss"] == pytest.approx(np.log(4), rel=0.5)
    assert logs_on["d_loss"] == pytest.approx(logs_off["d_loss"] + 2.0 * logs_on["d_class_loss"], rel=1e-4)
    assert np.isfinite(logs_on["g_class_loss"]) and logs_on["g_class_loss"] > 0
    np.testing.assert_array_equal(off.discriminator.get_layer("class_logits").get_weights()[0], head_off)
    assert not np.allclose(on.discriminator.get_layer("class_logits").get_weights()[0], head_on)
    assert DGAN(SIDE, 1, latent_dim=16, width=8, class_weight=1.0).class_weight == 0.0
    # Capped at a probability of 0.8: an untrained head (CE near log 4) is asked for log(1/0.8) less.
    _, _, logs_capped = one_step(2.0, class_confidence=0.8)
    assert logs_capped["d_loss"] == pytest.approx(logs_on["d_loss"], rel=1e-5)
    assert logs_capped["g_class_loss"] == pytest.approx(logs_on["g_class_loss"] + np.log(0.8), rel=1e-4)


def test_class_augment_changes_what_the_class_head_sees_and_not_the_realness_score():
    """One step from equal weights and seeds, with the class head shown plain or mirrored images."""
    images, labels = _real_batch(16, 4)

    def one_step(class_augment):
        keras.utils.set_random_seed(0)
        gan = DGAN(
            SIDE, 4, latent_dim=16, width=8, augment=False, class_weight=1.0,
            class_augment=class_augment, seed=0,
        )  # fmt: skip
        gan.compile()
        return {k: float(v) for k, v in gan.train_step((tf.constant(images), tf.constant(labels))).items()}

    plain, mirrored = one_step(""), one_step("flip")
    assert mirrored["real_score"] == pytest.approx(plain["real_score"], rel=1e-6)
    assert mirrored["d_class_loss"] != pytest.approx(plain["d_class_loss"], rel=1e-4)
    # The discriminator's loss is the hinge loss (equal) plus the class loss (different).
    hinge = plain["d_loss"] - plain["d_class_loss"]
    assert mirrored["d_loss"] == pytest.approx(hinge + mirrored["d_class_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="rotate"):
        DGAN(SIDE, 4, latent_dim=16, width=8, class_weight=1.0, class_augment="flip,rotate")


def test_the_twin_classifier_learns_generated_classes_and_is_subtracted_for_the_generator():
    """Check TAC-GAN's twin head against the auxiliary loss alone, from equal weights and seeds.

    The twin is one more head on the same features, so the discriminator's loss grows by exactly
    ``class_weight`` times the twin's cross-entropy on the generated images; the generator's class
    loss loses that cross-entropy (about log 4 for untrained heads).
    """
    images, labels = _real_batch(16, 4)

    def one_step(twin):
        keras.utils.set_random_seed(0)
        gan = DGAN(SIDE, 4, latent_dim=16, width=8, augment=False, class_weight=2.0, twin_classifier=twin)
        gan.compile()
        history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
        return gan, {k: v[0] for k, v in history.items()}

    aux, logs_aux = one_step(False)
    tac, logs_tac = one_step(True)
    assert len(aux.discriminator.outputs) == 2 and len(tac.discriminator.outputs) == 3
    twin_loss = logs_tac["d_class_loss"] - logs_aux["d_class_loss"]
    assert twin_loss == pytest.approx(np.log(4), rel=0.5)
    assert logs_tac["d_loss"] == pytest.approx(logs_aux["d_loss"] + 2.0 * twin_loss, rel=1e-4)
    assert logs_tac["g_class_loss"] < logs_aux["g_class_loss"] - 0.5
    # Without the auxiliary loss there is nothing for a twin to balance.
    assert not DGAN(SIDE, 4, latent_dim=16, width=8, twin_classifier=True).twin_classifier


def test_the_mode_seeking_term_adds_its_weight_over_the_images_spread_to_the_generator_loss():
    """One step with and without the mode-seeking term, from equal weights and seeds.

    The discriminator's step is the same; the generator's loss grows by exactly
    ``diversity_weight / ratio``, with ``ratio`` the images' mean difference over the noises'.
    """
    images, labels = _real_batch(16, 4)

    def one_step(weight):
        keras.utils.set_random_seed(0)
        gan = DGAN(SIDE, 4, latent_dim=16, width=8, augment=False, diversity_weight=weight)
        gan.compile()
        history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
        return {k: v[0] for k, v in history.items()}

    plain, seeking = one_step(0.0), one_step(2.0)
    assert plain["diversity"] == 0 and seeking["diversity"] > 0
    assert seeking["d_loss"] == pytest.approx(plain["d_loss"], rel=1e-6)
    expected = plain["g_loss"] + 2.0 / (seeking["diversity"] + 1e-5)
    assert seeking["g_loss"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="diversity_weight must be at least 0"):
        DGAN(SIDE, 4, latent_dim=16, width=8, diversity_weight=-1)


def _constant_guide(probabilities):
    """A classifier of uint8-scaled images that gives every image ``probabilities``."""
    image = keras.Input((SIDE, SIDE, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    logits = keras.layers.Dense(
        len(probabilities),
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(np.log(probabilities)),
    )(pooled)
    return keras.Model(image, keras.layers.Softmax()(logits))


def test_the_guide_adds_its_cross_entropy_on_the_intended_classes_and_stays_frozen():
    """One step with and without a guide that gives every image the same probabilities.

    The discriminator's step is the same; the generator's loss grows by exactly
    ``guide_weight`` times the mean of ``-log p(intended class)``; the guide is not trained.
    """
    images, labels = _real_batch(16, 4)
    probabilities = np.array([0.5, 0.25, 0.125, 0.125])

    def one_step(guide, **options):
        keras.utils.set_random_seed(0)
        gan = DGAN(SIDE, 4, latent_dim=16, width=8, augment=False, guide=guide, **options)
        gan.compile()
        history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
        return {k: v[0] for k, v in history.items()}

    guide = _constant_guide(probabilities)
    before = [w.numpy().copy() for w in guide.weights]
    plain, guided = one_step(None), one_step(guide, guide_weight=3.0)
    cross_entropy = -np.log(probabilities[labels]).mean()
    assert plain["guide_loss"] == 0
    assert guided["guide_loss"] == pytest.approx(cross_entropy, rel=1e-5)
    assert guided["d_loss"] == pytest.approx(plain["d_loss"], rel=1e-6)
    assert guided["g_loss"] == pytest.approx(plain["g_loss"] + 3.0 * cross_entropy, rel=1e-4)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, guide.weights, strict=True))
    # Capped as the auxiliary loss: class 0 (p = 0.5) asks nothing under a cap of 0.4.
    capped = one_step(_constant_guide(probabilities), class_confidence=0.4)
    expected = np.maximum(0, -np.log(probabilities[labels]) + np.log(0.4)).mean()
    assert capped["guide_loss"] == pytest.approx(expected, rel=1e-5)


def test_the_feature_discriminator_adds_its_hinge_loss_trains_its_head_and_leaves_the_network_frozen():
    """Equal first steps at feature weights 0 and 2: the discriminator's loss differs by twice the hinge."""
    images, labels = _real_batch(16, 4)
    image = keras.Input((SIDE, SIDE, 1))
    network = keras.Model(image, keras.layers.Dense(6)(keras.layers.GlobalAveragePooling2D()(image / 255.0)))
    frozen = [w.numpy().copy() for w in network.weights]

    def one_step(weight):
        keras.utils.set_random_seed(0)
        gan = DGAN(SIDE, 4, latent_dim=16, width=8, augment=False, feature_net=network, feature_weight=weight)
        gan.compile()
        head = [w.numpy().copy() for w in gan.feature_head.weights]
        history = gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history
        changed = any(
            not np.array_equal(b, w.numpy()) for b, w in zip(head, gan.feature_head.weights, strict=True)
        )
        return {k: v[0] for k, v in history.items()}, changed

    (off, _), (on, head_trained) = one_step(0.0), one_step(2.0)
    assert on["feature_d_loss"] > 0 and on["feature_d_loss"] == pytest.approx(off["feature_d_loss"], rel=1e-6)
    assert on["d_loss"] == pytest.approx(off["d_loss"] + 2.0 * off["feature_d_loss"], rel=1e-5)
    assert head_trained
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(frozen, network.weights, strict=True))


def test_the_lecam_term_pulls_the_scores_towards_the_anchors_and_the_anchors_follow_the_scores():
    """Equal first steps at LeCam weights 0 and 3: the anchors start at 0, so the term is the squared
    positive real scores plus the squared negative generated ones, and then move to the mean scores."""
    images, labels = _real_batch(16, 4)

    def one_step(weight):
        keras.utils.set_random_seed(0)
        gan = DGAN(SIDE, 4, latent_dim=16, width=8, augment=False, lecam_weight=weight)
        gan.compile()
        return gan, {
            k: v[0] for k, v in gan.fit(images, labels, batch_size=16, epochs=1, verbose=0).history.items()
        }

    (_, off), (gan, on) = one_step(0.0), one_step(3.0)
    assert off["lecam"] == 0.0 and on["lecam"] > 0
    assert on["real_score"] == pytest.approx(off["real_score"], rel=1e-5)
    assert on["d_loss"] == pytest.approx(off["d_loss"] + 3.0 * on["lecam"], rel=1e-5)
    kept = 1 - 2 / 11  # the new mean score's share after one step: the warm-up's decay is 2 / 11
    assert float(gan.real_anchor) == pytest.approx(kept * on["real_score"], rel=1e-4)
    with pytest.raises(ValueError, match="lecam_weight must be at least 0"):
        DGAN(SIDE, 4, latent_dim=16, width=8, lecam_weight=-1)


def test_a_capped_class_loss_asks_nothing_of_images_already_confident_enough():
    """Check that an image at probability 0.9 adds nothing under a cap of 0.8, one at 0.5 the rest."""
    logits = tf.math.log(tf.constant([[0.9, 0.05, 0.05], [0.5, 0.25, 0.25]]))
    labels = tf.constant([0, 0])
    capped = float(DGAN._class_loss(logits, labels, -np.log(0.8)))
    assert capped == pytest.approx((np.log(1 / 0.5) - np.log(1 / 0.8)) / 2, rel=1e-5)
    uncapped = float(DGAN._class_loss(logits, labels))
    assert uncapped == pytest.approx((np.log(1 / 0.9) + np.log(2)) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="class_confidence is a probability"):
        DGAN(SIDE, 4, latent_dim=16, width=8, class_confidence=1.5)


def test_generate_gives_the_requested_classes_reproducibly():
    gan = DGAN(SIDE, 4, latent_dim=16, width=8)
    labels = np.repeat(np.arange(4), [3, 1, 0, 2])
    images = gan.generate(labels, seed=5)
    assert images.shape == (6, SIDE, SIDE) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, gan.generate(labels, seed=5))
    assert not np.array_equal(images, gan.generate(labels, seed=6))
    assert gan.generate(np.array([], int)).shape == (0, SIDE, SIDE)


def test_truncated_noise_stays_within_its_bound_and_uncut_noise_is_the_plain_draw():
    uncut = truncated_noise(np.random.default_rng(3), (500, 8))
    np.testing.assert_array_equal(
        uncut, np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    )
    cut = truncated_noise(np.random.default_rng(3), (500, 8), 0.5)
    assert cut.dtype == np.float32 and np.abs(cut).max() <= 0.5
    # Resampled, not clipped: no pile-up at the bound, and the cut normal's spread (0.28 at 0.5).
    assert (np.abs(cut) > 0.49).mean() < 0.05
    assert cut.std() == pytest.approx(0.28, abs=0.02)
    with pytest.raises(ValueError, match="truncation must be positive"):
        truncated_noise(np.random.default_rng(0), (2, 2), 0.0)


def test_truncation_draws_images_nearer_each_other():
    gan = DGAN(SIDE, 4, latent_dim=16, width=8)
    labels = np.zeros(32, int)
    spread = {
        t: gan.generate(labels, seed=2, truncation=t).astype(float).std(axis=0).mean() for t in (None, 0.1)
    }
    assert spread[0.1] < 0.5 * spread[None]
    np.testing.assert_array_equal(gan.generate(labels, seed=2), gan.generate(labels, seed=2, truncation=None))


def test_the_class_changes_what_the_generator_draws():
    gan = DGAN(SIDE, 4, latent_dim=16, width=8)
    zeros = gan.generate(np.zeros(4, int), seed=1).astype(int)
    threes = gan.generate(np.full(4, 3), seed=1).astype(int)
    assert np.abs(zeros - threes).mean() > 0


def test_conditional_norm_looks_up_a_scale_and_shift_per_class_at_every_stage():
    plain = build_generator(SIDE, 4, latent_dim=16, width=8, conditional_norm=False)
    conditional = build_generator(SIDE, 4, latent_dim=16, width=8, conditional_norm=True)
    # One scale and one shift table per normalisation: the 4x4 start and the three stages to 32 px.
    gains = [layer.name for layer in conditional.layers if layer.name.endswith("_gain")]
    assert gains == ["start_gain", "stage1_gain", "stage2_gain", "stage3_gain"]
    assert not any(layer.name.endswith("_gain") for layer in plain.layers)
    unconditional = build_generator(SIDE, 1, latent_dim=16, width=8)
    assert not any(layer.name.endswith("_gain") for layer in unconditional.layers)

    # Silence the class at the input, so that only the normalisations can tell the classes apart.
    embedding = conditional.get_layer("class_embedding")
    embedding.set_weights([np.zeros_like(embedding.get_weights()[0])])
    noise = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)

    def draw(k):
        return np.asarray(conditional([noise, np.full(8, k, np.int32)], training=False))

    # Initialised as plain batch norm (scale 1, shift 0 for every class): the classes draw alike.
    np.testing.assert_array_equal(draw(0), draw(3))
    before = draw(0)
    shift = conditional.get_layer("stage3_shift")
    table = np.zeros_like(shift.get_weights()[0])
    table[3] = 1.0  # class 3 only
    shift.set_weights([table])
    np.testing.assert_allclose(draw(0), before, atol=1e-6)
    assert np.abs(draw(3) - before).mean() > 1e-3


def test_compile_sets_both_optimisers_learning_rate():
    gan = DGAN(SIDE, 4, latent_dim=16, width=8)
    gan.compile(learning_rate=1e-3)
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(1e-3)
