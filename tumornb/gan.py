"""The D-GAN: a deep convolutional GAN that draws extra training images per class.

Two variants share one implementation:

* **conditional** (the default): one GAN for all classes; the generator gets
  the class with the noise, the discriminator judges "real image *of this
  class*?" through a projection of the class embedding (Miyato & Koyama, 2018).
  Every class helps train the shared anatomy. Optionally (``class_weight > 0``)
  the discriminator's *auxiliary classifier*, a class head on its features
  trained on real images only, also steers the generator towards images that
  head recognises as the class drawn (Odena et al., 2017). Also optionally
  (``conditional_norm``) every batch normalisation of the generator takes its
  scale and shift from a per-class table (de Vries et al., 2017), so the class
  reaches every stage instead of the input only. With ``twin_classifier`` a
  second class head learns the classes of the *generated* images, and the
  generator is rewarded for images that head finds hard (Gong et al., 2019,
  "TAC-GAN"): the auxiliary loss alone pulls every class to the few images its
  head is surest of; the twin's term pushes back towards the class's spread.
  With ``diversity_weight`` the generator is also rewarded for drawing two
  different images of a class from two different noises (mode seeking, Mao et
  al., 2019, "MSGAN"), the direct answer to a class collapsing onto one image.
* **per class** (the original method): one unconditional GAN per class, each
  on that class's images only. Here it is the same model with one "class".

What makes a GAN train on a few hundred images, each cheap to compute:

* spectral normalisation of the discriminator's layers and the hinge loss, so
  the discriminator cannot run away from the generator;
* differentiable augmentation (Zhao et al., 2020, "DiffAugment"): real and
  generated images alike are shifted, brightened and cut out before the
  discriminator sees them, so it cannot memorise the few real images;
* an exponential moving average of the generator's weights, used for every
  image drawn after training: smoother than the last step's weights.

Every random draw in a training step is stateless, a function of the seed and
the step number, so a run resumed from its backup continues exactly as an
uninterrupted one would.

Images are float tensors in [-1, 1] inside this module; :func:`to_uint8` and
:func:`from_uint8` convert at the edges.
"""

from __future__ import annotations

import math

import numpy as np

from tumornb.backend import keras, layers, tf

__all__ = [
    "DGAN",
    "build_discriminator",
    "build_feature_head",
    "build_generator",
    "DIFF_AUGMENT_POLICY",
    "diff_augment",
    "from_uint8",
    "to_uint8",
]


def from_uint8(images: np.ndarray) -> np.ndarray:
    """Grey uint8 images ``(n, side, side)`` to float32 ``(n, side, side, 1)`` in [-1, 1].

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8

    Returns
    -------
    ndarray of shape (n, side, side, 1), float32
        In [-1, 1].
    """
    return (np.asarray(images, np.float32)[..., None] / 127.5 - 1.0).astype(np.float32)


def to_uint8(images) -> np.ndarray:
    """Generator output ``(n, side, side, 1)`` in [-1, 1] to grey uint8 ``(n, side, side)``.

    Parameters
    ----------
    images : array of shape (n, side, side, 1)
        In [-1, 1].

    Returns
    -------
    ndarray of shape (n, side, side), uint8
    """
    x = np.asarray(images, np.float32)[..., 0]
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _translate(images: tf.Tensor, seed: tf.Tensor, max_shift: int) -> tf.Tensor:
    """Shift each image by its own whole number of pixels; background (-1) comes in at the edges.

    Gathers rows and columns from a padded copy: cheap, differentiable, and (unlike an
    affine warp) supported by XLA.
    """
    n, side = tf.shape(images)[0], images.shape[1]
    shifts = tf.random.stateless_uniform((n, 2), seed, -max_shift, max_shift + 1, dtype=tf.int32)
    padded = tf.pad(
        images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]], constant_values=-1.0
    )
    index = tf.range(side)[None, :] + max_shift
    rows = tf.gather(padded, index - shifts[:, :1], axis=1, batch_dims=1)
    return tf.gather(rows, index - shifts[:, 1:], axis=2, batch_dims=1)


#: DiffAugment's transforms, in the order they are applied; a policy names a subset, comma-separated.
DIFF_AUGMENT_POLICY = "shift,brightness,cutout"

#: Every transform a policy may name: DiffAugment's, and a left-right flip (a brain's mirror image is
#: a brain; chapter 03's classifier and the judge train with it).
_TRANSFORMS = (*DIFF_AUGMENT_POLICY.split(","), "flip")


def _policy_transforms(policy: str) -> list[str]:
    """The transforms a DiffAugment policy names; a clear error for any other name."""
    transforms = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = sorted(set(transforms) - set(_TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown DiffAugment transform(s) {unknown}; choose from {','.join(_TRANSFORMS)!r}")
    return transforms


def diff_augment(images: tf.Tensor, seed: tf.Tensor, policy: str = DIFF_AUGMENT_POLICY) -> tf.Tensor:
    """Shift (up to 1/8 of the side), brightness, cutout and flip, differentiable in ``images`` (DiffAugment).

    Parameters
    ----------
    images : Tensor of shape (batch, side, side, 1), in [-1, 1]
    seed : Tensor of shape (2,), int
        Stateless seed; equal seeds give equal outputs.
    policy : str, default="shift,brightness,cutout"
        The transforms to apply, comma-separated, as in Zhao et al.'s ``policy`` argument.
        Cutout hides half the side, which can hide the lesion that makes the class. ``flip``
        (not in the default policy) mirrors half the images left to right.
    """
    transforms = _policy_transforms(policy)
    n, side = tf.shape(images)[0], images.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    x = images
    if "flip" in transforms:  # its own seed, so the other transforms draw as without it
        coin = tf.random.stateless_uniform((n, 1, 1, 1), tf.random.experimental.stateless_fold_in(seed, 4))
        x = tf.where(coin < 0.5, x[:, :, ::-1], x)
    if "shift" in transforms:
        x = _translate(x, seeds[0], max_shift=side // 8)
    if "brightness" in transforms:
        x = x + tf.random.stateless_uniform((n, 1, 1, 1), seeds[1], -0.5, 0.5)
    if "cutout" in transforms:
        # Cut out a square of half the side at a random place: set to 0 (mid-grey).
        half = side // 2
        corner = tf.random.stateless_uniform((n, 2), seeds[2], 0, side - half + 1, dtype=tf.int32)
        rows = tf.range(side)[None, :, None]
        cols = tf.range(side)[None, None, :]
        inside_rows = (rows >= corner[:, 0, None, None]) & (rows < corner[:, 0, None, None] + half)
        inside_cols = (cols >= corner[:, 1, None, None]) & (cols < corner[:, 1, None, None] + half)
        x = x * tf.cast(~(inside_rows & inside_cols), x.dtype)[..., None]
    return x


def truncated_noise(
    rng: np.random.Generator, shape: tuple[int, int], truncation: float | None = None
) -> np.ndarray:
    """Standard normal noise, with every entry beyond ``±truncation`` drawn again until none is.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
    truncation : float, optional
        Positive bound on each entry's magnitude; None leaves the normal uncut, and the
        draw is then exactly ``rng.standard_normal(shape)``.

    Returns
    -------
    numpy.ndarray
        float32 noise of ``shape``.
    """
    noise = rng.standard_normal(shape)
    if truncation is not None:
        if truncation <= 0:
            raise ValueError(f"truncation must be positive, got {truncation}")
        outside = np.abs(noise) > truncation
        while outside.any():
            noise[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(noise) > truncation
    return noise.astype(np.float32)


def _stages(image_size: int) -> int:
    stages = int(np.log2(image_size)) - 2  # from 4x4
    if image_size < 16 or 2 ** (stages + 2) != image_size:
        raise ValueError(f"GAN image_size must be a power of two, at least 16, got {image_size}")
    return stages


def _conditional_batch_norm(x, label, n_classes: int, name: str):
    """Batch normalisation whose scale and shift are looked up per class (de Vries et al., 2017).

    Every stage of the generator is told the class again, instead of only its input:
    the class can move the features at each resolution, where the lesions are drawn.
    The scale starts at 1 and the shift at 0 for every class, as plain batch norm.
    """
    channels = x.shape[-1]
    x = layers.BatchNormalization(center=False, scale=False, name=f"{name}_norm")(x)
    gain = layers.Embedding(n_classes, channels, embeddings_initializer="zeros", name=f"{name}_gain")(label)
    shift = layers.Embedding(n_classes, channels, embeddings_initializer="zeros", name=f"{name}_shift")(label)
    gain = layers.Reshape((1, 1, channels))(gain)
    shift = layers.Reshape((1, 1, channels))(shift)
    return layers.Add()([x, layers.Multiply()([x, gain]), shift])  # x * (1 + gain) + shift


def build_generator(
    image_size: int = 64,
    n_classes: int = 4,
    *,
    latent_dim: int = 128,
    width: int = 32,
    conditional_norm: bool = False,
) -> keras.Model:
    """Noise and class to image: a dense 4x4 start, then upsample-and-convolve stages.

    Parameters
    ----------
    image_size : int, default=64
        A power of two; the output is ``(image_size, image_size, 1)`` in [-1, 1].
    n_classes : int, default=4
        1 for an unconditional generator (the class input is then always 0).
    latent_dim : int, default=128
    width : int, default=32
        Filters of the last stage; each earlier stage has twice as many, up to ``4 * width``.
    conditional_norm : bool, default=False
        Class-conditional batch normalisation at every stage (the class sets each
        normalisation's scale and shift). False: the class enters with the noise only,
        as in tumornb 0.1. No effect with one class.

    Returns
    -------
    keras.Model
        Inputs ``[noise (batch, latent_dim), class (batch,) int]``.
    """
    stages = _stages(image_size)
    conditional_norm = conditional_norm and n_classes > 1
    noise = keras.Input((latent_dim,), name="noise")
    label = keras.Input((), dtype="int32", name="class")

    def normalise(x, name):
        if conditional_norm:
            return _conditional_batch_norm(x, label, n_classes, name)
        return layers.BatchNormalization()(x)

    embedded = layers.Embedding(n_classes, latent_dim, name="class_embedding")(label)
    x = layers.Concatenate()([noise, embedded])
    top = width * min(4, 2 ** (stages - 1))
    x = layers.Dense(4 * 4 * top, use_bias=False)(x)
    x = layers.Reshape((4, 4, top))(x)
    x = layers.ReLU()(normalise(x, "start"))
    for i in range(stages):
        filters = width * min(4, 2 ** (stages - 1 - i))
        x = layers.UpSampling2D()(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(normalise(x, f"stage{i + 1}"))
    image = layers.Conv2D(1, 3, padding="same", activation="tanh", dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name="generator")


def build_discriminator(
    image_size: int = 64, n_classes: int = 4, *, width: int = 32, twin: bool = False
) -> keras.Model:
    """Image and class to a realness score and class logits: spectrally normalised strided convolutions.

    The score is ``w . h + embed(class) . h`` for the pooled features ``h``: the
    projection discriminator, which asks whether the image is real *and*
    belongs to the class. The logits ``V h`` are the auxiliary classifier's.

    Parameters
    ----------
    image_size : int, default=64
    n_classes : int, default=4
    width : int, default=32
    twin : bool, default=False
        Add a second class head on the same features (the twin classifier of TAC-GAN).

    Returns
    -------
    keras.Model
        Inputs ``[image (batch, side, side, 1), class (batch,) int]``; outputs
        ``[score (batch, 1), class_logits (batch, n_classes)]``, and
        ``twin_logits (batch, n_classes)`` after them when ``twin``.
    """
    stages = _stages(image_size)
    image = keras.Input((image_size, image_size, 1), name="image")
    label = keras.Input((), dtype="int32", name="class")
    x = image
    for i in range(stages):
        filters = width * min(4, 2**i)
        x = layers.SpectralNormalization(layers.Conv2D(filters, 4, strides=2, padding="same"))(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.SpectralNormalization(layers.Conv2D(filters, 3, padding="same"))(x)
    h = layers.GlobalAveragePooling2D()(layers.LeakyReLU(0.2)(x))
    score = layers.SpectralNormalization(layers.Dense(1))(h)
    class_vector = layers.Embedding(n_classes, filters, name="class_projection")(label)
    projection = layers.Dot(axes=1)([class_vector, h])
    score = layers.Add(dtype="float32", name="score")([score, projection])
    # The spectrally normalised features vary little between images (a per-feature spread of
    # about 0.004 at initialisation): standardised over the batch first, the head can learn.
    standardised = layers.BatchNormalization()(h)
    outputs = [score, layers.Dense(n_classes, dtype="float32", name="class_logits")(standardised)]
    if twin:
        outputs.append(layers.Dense(n_classes, dtype="float32", name="twin_logits")(standardised))
    return keras.Model([image, label], outputs, name="discriminator")


def build_feature_head(n_features: int, n_classes: int = 4) -> keras.Model:
    """A projection discriminator's head on features from a frozen network.

    The score is ``w . f + embed(class) . f`` for the features ``f``, as the last
    layers of :func:`build_discriminator`, spectrally normalised.

    Parameters
    ----------
    n_features : int
    n_classes : int, default=4

    Returns
    -------
    keras.Model
        Inputs ``[features (batch, n_features), class (batch,) int]``; output the score ``(batch, 1)``.
    """
    features = keras.Input((n_features,), name="features")
    label = keras.Input((), dtype="int32", name="class")
    score = layers.SpectralNormalization(layers.Dense(1))(features)
    class_vector = layers.Embedding(n_classes, n_features, name="class_projection")(label)
    projection = layers.Dot(axes=1)([class_vector, features])
    score = layers.Add(dtype="float32", name="score")([score, projection])
    return keras.Model([features, label], score, name="feature_head")


class DGAN(keras.Model):
    """Generator, discriminator and the generator's moving average, trained with the hinge loss.

    Parameters
    ----------
    image_size : int, default=64
    n_classes : int, default=4
        1 for the per-class variant (one model per class).
    latent_dim : int, default=128
    width : int, default=32
        Width of both networks (see :func:`build_generator`).
    ema : float, default=0.999
        Decay of the generator's moving average, reached after a warm-up.
    augment : bool or str, default=True
        Differentiable augmentation of everything the discriminator sees: True for
        :data:`DIFF_AUGMENT_POLICY`, or a policy of its own (see :func:`diff_augment`).
    class_weight : float, default=0.0
        Weight of the auxiliary classification loss: the discriminator's class head
        learns the real images' classes, and the generator is penalised by the same
        cross-entropy on its images' intended classes. 0 (the default) leaves the
        head untrained and the losses as without it; no effect with one class.
    class_augment : str, default=""
        A :func:`diff_augment` policy for what the auxiliary class head sees (real images in
        the discriminator's class loss, generated ones in the generator's), e.g.
        ``"shift,flip"``; "" shows it the images as they are. On the plain real images
        the head can learn the training images by heart and then steer the generator
        towards them rather than towards the class; augmented, it must learn what the
        class looks like wherever it lies. The realness score is untouched: the head gets
        a forward pass of its own.
    class_confidence : float, optional
        Cap on what the auxiliary loss asks of the generator: its images stop being pushed
        towards their class once the head gives it at least this probability (the
        cross-entropy enters as ``max(0, CE + log(class_confidence))``). Without a cap the
        generator can lower the loss all the way by drawing a few prototypes per class.
    conditional_norm : bool, default=False
        Class-conditional batch normalisation in the generator (see :func:`build_generator`).
    twin_classifier : bool, default=False
        A twin class head learns the generated images' classes (weight ``class_weight``),
        and the generator's auxiliary loss subtracts that head's cross-entropy: images
        of a class should be as hard to tell apart from each other as real ones, not
        collapse to what the real-image head is surest of. Needs ``class_weight > 0``.
    diversity_weight : float, default=0.0
        Weight of the mode-seeking term: each generator step draws a second image per
        class from other noise and minimises ``1 / (mean|G(z1, y) - G(z2, y)| / mean|z1 - z2|)``,
        which grows as two noises give the same image. 0 (the default) leaves it out.
    guide : keras.Model, optional
        A classifier already trained on the real training images (uint8-scaled images to
        class probabilities), kept frozen: the generator is also penalised by its
        cross-entropy on the intended classes (capped as the auxiliary loss, by
        ``class_confidence``), on randomly shifted copies so that the guide's pixel-exact
        quirks pay less. Unlike the auxiliary head, it knows the classes from the first
        step. It must not be the classifier that later judges the images.
    guide_weight : float, default=1.0
        Weight of the guide's cross-entropy; no effect without a guide.
    feature_net : keras.Model, optional
        A frozen network from uint8-scaled images to feature vectors (e.g. a guide's
        penultimate layer, :func:`tumornb.fidelity.judge_encoder`): a second discriminator,
        :func:`build_feature_head`, learns to tell real from generated images of a class
        in its features, with its own hinge loss (weight ``feature_weight``), on randomly
        shifted copies; as Vision-aided GAN (Kumari et al., 2022) with pretrained networks.
    feature_weight : float, default=1.0
        Weight of the feature discriminator's losses; no effect without ``feature_net``.
    lecam_weight : float, default=0.0
        Weight of the LeCam regulariser (Tseng et al., 2021), made for GANs trained on few
        images without augmenting them: the discriminator's scores of real images are
        pulled towards the moving average of its scores of generated ones and back, so
        that it cannot drive the two apart by learning the training images by heart.
        0 (the default) leaves it out.
    lecam_decay : float, default=0.99
        Decay of the two moving averages of the LeCam regulariser, reached after a warm-up.
    seed : int, default=0
        Every random draw in training is a function of this and the step.

    Notes
    -----
    Train with :meth:`fit` on batches ``(images in [-1, 1], class indices)``
    after :meth:`compile` with two optimisers; draw with :meth:`generate`.
    """

    def __init__(
        self,
        image_size: int = 64,
        n_classes: int = 4,
        *,
        latent_dim: int = 128,
        width: int = 32,
        ema: float = 0.999,
        augment: bool | str = True,
        class_weight: float = 0.0,
        class_augment: str = "",
        class_confidence: float | None = None,
        conditional_norm: bool = False,
        twin_classifier: bool = False,
        diversity_weight: float = 0.0,
        guide: keras.Model | None = None,
        guide_weight: float = 1.0,
        feature_net: keras.Model | None = None,
        feature_weight: float = 1.0,
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.99,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size, self.n_classes, self.latent_dim = image_size, n_classes, latent_dim
        self.ema, self.seed = ema, seed
        self.augment = DIFF_AUGMENT_POLICY if augment is True else augment or ""
        _policy_transforms(self.augment)
        self.class_weight = float(class_weight) if n_classes > 1 else 0.0
        _policy_transforms(class_augment)
        self.class_augment = class_augment
        if class_confidence is not None and not 0 < class_confidence < 1:
            raise ValueError(f"class_confidence is a probability between 0 and 1, got {class_confidence}")
        self.class_margin = -math.log(class_confidence) if class_confidence else 0.0
        if diversity_weight < 0:
            raise ValueError(f"diversity_weight must be at least 0, got {diversity_weight}")
        self.diversity_weight = float(diversity_weight)
        if guide is not None:
            guide.trainable = False
        self.guide, self.guide_weight = guide, float(guide_weight)
        self.feature_net, self.feature_weight, self.feature_head = feature_net, float(feature_weight), None
        if feature_net is not None:
            feature_net.trainable = False
            self.feature_head = build_feature_head(feature_net.outputs[0].shape[-1], n_classes)
        if lecam_weight < 0:
            raise ValueError(f"lecam_weight must be at least 0, got {lecam_weight}")
        self.lecam_weight, self.lecam_decay = float(lecam_weight), float(lecam_decay)
        if self.lecam_weight > 0:  # moving averages of the mean real and generated scores
            self.real_anchor = keras.Variable(0.0, trainable=False, name="lecam_real_anchor")
            self.fake_anchor = keras.Variable(0.0, trainable=False, name="lecam_fake_anchor")
        shape = dict(latent_dim=latent_dim, width=width, conditional_norm=conditional_norm)
        self.generator = build_generator(image_size, n_classes, **shape)
        self.twin_classifier = bool(twin_classifier) and self.class_weight > 0
        self.discriminator = build_discriminator(
            image_size, n_classes, width=width, twin=self.twin_classifier
        )
        self.ema_generator = build_generator(image_size, n_classes, **shape)
        self.ema_generator.set_weights(self.generator.get_weights())
        self.built = True  # every part is a built functional model

    def compile(self, g_optimizer=None, d_optimizer=None, *, learning_rate: float = 2e-4, **kwargs):
        """Adam at ``learning_rate`` for the generator and the discriminator, betas (0, 0.99), unless given.

        Parameters
        ----------
        g_optimizer, d_optimizer : keras.optimizers.Optimizer, optional
        learning_rate : float, default=2e-4
            Of the default optimisers.
        **kwargs
            Passed to :meth:`keras.Model.compile`.
        """
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99)
        # Keras' own bookkeeping (step counter, checkpoints) follows the discriminator's optimiser.
        # No XLA: the augmentation's image transform has no XLA kernel.
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=self.d_optimizer, **kwargs)
        # Built now so that a checkpoint's optimiser state has somewhere to load into.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self._d_weights())

    def _d_weights(self) -> list:
        """What the discriminator's optimiser trains: the discriminator and the feature head."""
        head = self.feature_head.trainable_weights if self.feature_head is not None else []
        return self.discriminator.trainable_weights + head

    def _feature_score(self, images, labels, seed):
        """The feature discriminator's score of randomly shifted copies of ``images`` in [-1, 1]."""
        shifted = (diff_augment(images, seed, "shift") + 1.0) * 127.5
        return self.feature_head([self.feature_net(shifted, training=False), labels])

    def call(self, inputs, training=False):
        """Images from ``[noise, labels]`` drawn by the averaged generator."""
        return self.ema_generator(inputs, training=training)

    def _step_seeds(self, n: int) -> tf.Tensor:
        step = tf.cast(self.d_optimizer.iterations, tf.int64)
        return tf.random.experimental.stateless_split(tf.stack([tf.constant(self.seed, tf.int64), step]), n)

    def _judge(self, images, labels, seed):
        """Score, class logits and twin logits (None without a twin) of the augmented images."""
        if self.augment:
            images = diff_augment(images, seed, self.augment)
        outputs = self.discriminator([images, labels], training=True)
        return outputs[0], outputs[1], outputs[2] if self.twin_classifier else None

    def _class_logits(self, images, labels, logits, seed):
        """The class head's logits of ``images``.

        ``logits`` as they are without ``class_augment``; with it, those of a pass of their own
        on ``images`` augmented by its transforms.
        """
        if not self.class_augment:
            return logits
        shown = diff_augment(images, tf.random.experimental.stateless_fold_in(seed, 7), self.class_augment)
        return self.discriminator([shown, labels], training=True)[1]

    def train_step(self, data):
        r"""One step of each network; what each minimises, for real images $x$ of class $y$ and $G(z, y)$.

        .. math::

            L_D = E[\max(0, 1 - D(x, y))] + E[\max(0, 1 + D(G(z, y), y))] + \lambda\,CE(C(x), y)
                  + \lambda\,CE(T(G(z, y)), y)
                  + \rho\,(E[\max(0, D(x, y) - a_G)^2] + E[\max(0, a_R - D(G(z, y), y))^2])

            L_G = -E[D(G(z, y), y)] + \lambda\,E[\max(0, CE(C(G(z, y)), y) - m)] - \lambda\,CE(T(G(z, y)), y)
                  + \mu \frac{E|z - z'|}{E|G(z, y) - G(z', y)|}
                  + \gamma\,E[\max(0, -\log P(y \mid S(G(z, y))) - m)] - \phi\,E[F(S(G(z, y)), y)]

        with $D$ the projection score, $C$ the auxiliary class head (shown its images through
        ``class_augment``'s transforms, when given), $T$ the twin head (its
        terms only with ``twin_classifier``), $\lambda$ ``class_weight``,
        $m = -\log$ ``class_confidence`` (0 without a cap) and $\mu$ ``diversity_weight``
        (the mode-seeking term, only when $\mu > 0$); $P$ the frozen ``guide``, $S$ a random
        shift and $\gamma$ ``guide_weight`` (the guide's term, only with a guide); $F$ the
        feature discriminator and $\phi$ ``feature_weight`` (only with a ``feature_net``), whose
        own hinge loss, as $D$'s on shifted images, enters $L_D$ times $\phi$; $\rho$
        ``lecam_weight`` and $a_R$, $a_G$ the moving averages of $D$'s mean real and generated
        scores (the LeCam term, only when $\rho > 0$).
        """
        real, labels = data
        labels = tf.cast(labels, tf.int32)
        n = tf.shape(real)[0]
        seeds = self._step_seeds(10)
        noise = tf.random.stateless_normal((n, self.latent_dim), seeds[0])
        with tf.GradientTape() as tape:
            fake = self.generator([noise, labels], training=True)
            real_score, real_logits, _ = self._judge(real, labels, seeds[1])
            fake_score, _, fake_twin = self._judge(fake, labels, seeds[2])
            adversarial = tf.reduce_mean(tf.nn.relu(1.0 - real_score)) + tf.reduce_mean(
                tf.nn.relu(1.0 + fake_score)
            )
            # The class head learns from real images only, so it cannot be taught the generator's mistakes.
            if self.class_weight > 0:
                real_logits = self._class_logits(real, labels, real_logits, seeds[1])
            d_class = self._class_loss(real_logits, labels)
            if self.twin_classifier:  # ... and the twin from generated images only.
                d_class = d_class + self._class_loss(fake_twin, labels)
            d_loss = adversarial + self.class_weight * d_class
            feature_hinge = tf.constant(0.0)
            if self.feature_net is not None:
                feature_hinge = tf.reduce_mean(
                    tf.nn.relu(1.0 - self._feature_score(real, labels, seeds[7]))
                ) + tf.reduce_mean(tf.nn.relu(1.0 + self._feature_score(fake, labels, seeds[8])))
                d_loss = d_loss + self.feature_weight * feature_hinge
            lecam = tf.constant(0.0)
            if self.lecam_weight > 0:
                lecam = tf.reduce_mean(tf.square(tf.nn.relu(real_score - self.fake_anchor))) + tf.reduce_mean(
                    tf.square(tf.nn.relu(self.real_anchor - fake_score))
                )
                d_loss = d_loss + self.lecam_weight * lecam
        weights = self._d_weights()
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))
        if self.lecam_weight > 0:
            self._update_anchors(real_score, fake_score)

        noise = tf.random.stateless_normal((n, self.latent_dim), seeds[3])
        with tf.GradientTape() as tape:
            fake = self.generator([noise, labels], training=True)
            fake_score, fake_logits, fake_twin = self._judge(fake, labels, seeds[4])
            if self.class_weight > 0:
                fake_logits = self._class_logits(fake, labels, fake_logits, seeds[4])
            g_class = self._class_loss(fake_logits, labels, self.class_margin)
            if self.twin_classifier:
                g_class = g_class - self._class_loss(fake_twin, labels)
            g_loss = -tf.reduce_mean(fake_score) + self.class_weight * g_class
            diversity = tf.constant(0.0)
            if self.diversity_weight > 0:
                other_noise = tf.random.stateless_normal((n, self.latent_dim), seeds[5])
                other = self.generator([other_noise, labels], training=True)
                diversity = tf.reduce_mean(tf.abs(fake - other)) / tf.reduce_mean(tf.abs(noise - other_noise))
                g_loss = g_loss + self.diversity_weight / (diversity + 1e-5)
            guided = tf.constant(0.0)
            if self.guide is not None:
                shown = (diff_augment(fake, seeds[6], "shift") + 1.0) * 127.5
                intended = tf.gather(self.guide(shown, training=False), labels, batch_dims=1)
                guided = tf.reduce_mean(tf.nn.relu(-tf.math.log(intended + 1e-7) - self.class_margin))
                g_loss = g_loss + self.guide_weight * guided
            if self.feature_net is not None:
                g_loss = g_loss - self.feature_weight * tf.reduce_mean(
                    self._feature_score(fake, labels, seeds[9])
                )
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))

        # Warm-up (as tf.train.ExponentialMovingAverage's num_updates): early on the
        # average follows the generator closely instead of its random initial weights.
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema, (1.0 + step) / (10.0 + step))
        for average, current in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * current)
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "real_score": tf.reduce_mean(real_score),
            "fake_score": tf.reduce_mean(fake_score),
            "d_class_loss": d_class,
            "g_class_loss": g_class,
            "diversity": diversity,
            "guide_loss": guided,
            "feature_d_loss": feature_hinge,
            "lecam": lecam,
        }

    def _update_anchors(self, real_score, fake_score):
        step = tf.cast(self.d_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.lecam_decay, (1.0 + step) / (10.0 + step))
        for anchor, score in ((self.real_anchor, real_score), (self.fake_anchor, fake_score)):
            anchor.assign(decay * anchor + (1.0 - decay) * tf.reduce_mean(score))

    @staticmethod
    def _class_loss(logits, labels, margin: float = 0.0):
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.reduce_mean(tf.nn.relu(cross_entropy - margin))

    def generate(
        self,
        labels: np.ndarray,
        *,
        seed: int = 0,
        batch_size: int = 256,
        truncation: float | None = None,
    ) -> np.ndarray:
        """Draw one image per entry of ``labels`` with the averaged generator, as uint8.

        The noise is a function of ``seed`` only, so equal calls give equal images.

        Parameters
        ----------
        labels : numpy.ndarray
            Class index of each image.
        seed : int, default=0
        batch_size : int, default=256
        truncation : float, optional
            BigGAN's truncation trick: noise drawn from the standard normal cut at
            ``±truncation`` (see :func:`truncated_noise`), which trades variety for images
            nearer the middle of what the generator draws. None draws the training noise.
        """
        labels = np.asarray(labels, np.int32)
        noise = truncated_noise(np.random.default_rng(seed), (len(labels), self.latent_dim), truncation)
        out = [
            to_uint8(
                self.ema_generator([noise[i : i + batch_size], labels[i : i + batch_size]], training=False)
            )
            for i in range(0, len(labels), batch_size)
        ]
        return np.concatenate(out) if out else np.empty((0, self.image_size, self.image_size), np.uint8)
