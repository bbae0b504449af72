"""The per-backbone layer presets: the ONE table of layer names (private).

Public through [`visionkit.backbones`][visionkit.backbones]. Every recipe that needs a
backbone's layers reads this table: style transfer (content and style layers),
DeepDream (dream layers and their weights), Grad-CAM (the default layer), filter
patterns, fine-tuning (the first layer to unfreeze), and the builders and
preprocessing of ``keras.applications``. No other module of the package spells a
backbone's layer names.

This module imports neither TensorFlow nor Keras until a backbone is built.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import _validate as V
from .errors import WeightsUnavailableError

__all__ = [
    "APPLICATIONS", "PREPROCESSINGS", "PRESETS", "Backbone", "application", "find_preset", "keras_models_dir",
    "load_weights_file", "preprocess_function", "preset",
]

#: Preprocessing modes of ``keras.applications`` -> range of the values the model takes.
PREPROCESSINGS: MappingProxyType[str, tuple[float, float]] = MappingProxyType({
    "caffe": (-123.68, 151.061),  # RGB -> BGR, ImageNet mean subtracted (VGG, ResNet50)
    "tf": (-1.0, 1.0),  # pixels / 127.5 - 1 (Inception, MobileNet, Xception, ResNetV2)
    "torch": (-2.1179, 2.64),  # (pixels / 255 - mean) / std (DenseNet)
    "none": (0.0, 255.0),  # the model normalises its raw [0, 255] input itself (EfficientNet, ConvNeXt)
})


@dataclass(frozen=True)
class Backbone:
    """The layers and input conventions of one ``keras.applications`` backbone.

    Attributes
    ----------
    name : str
        The key in [`PRESETS`][visionkit.backbones.PRESETS] (``"vgg16"``), also accepted by the recipes'
        ``backbone=`` arguments.
    module, constructor : str
        The builder ``keras.applications.<module>.<constructor>``.
    keras_name : str
        The ``model.name`` Keras gives the built model (a prefix for MobileNetV2,
        whose name carries its width and input size).
    preprocessing : {"caffe", "tf", "torch", "none"}
        The mode of the backbone's ``preprocess_input`` (``"none"``: the model takes
        raw ``[0, 255]`` pixels).
    min_size : int
        The smallest input side the backbone accepts.
    content_layers, style_layers : tuple of str
        Style transfer's content and style layers.
    dream_layers : tuple of (str, float)
        DeepDream's layers and weights (see [`dream_weights`][visionkit.backbones.Backbone.dream_weights]).
    cam_layer : str
        The default layer of Grad-CAM and the other CAM methods: the last
        convolutional feature map.
    filter_layers : tuple of str
        Layers whose filter patterns [`filter_patterns`][visionkit.visualize.filter_patterns] shows, shallow to deep.
    fine_tune_from : str
        The first layer to unfreeze when fine-tuning (the start of the last block).
    vgg_blocks : tuple of int
        For VGG backbones, the number of convolutions per block (style transfer
        rebuilds them with average pooling); empty for the others.
    """

    name: str
    module: str
    constructor: str
    keras_name: str
    preprocessing: str
    min_size: int
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    dream_layers: tuple[tuple[str, float], ...]
    cam_layer: str
    filter_layers: tuple[str, ...]
    fine_tune_from: str
    vgg_blocks: tuple[int, ...] = ()

    @property
    def builder(self) -> str:
        """The constructor's dotted name, ``"keras.applications.vgg16.VGG16"``."""
        return f"keras.applications.{self.module}.{self.constructor}"

    @property
    def input_range(self) -> tuple[float, float]:
        """The range of the values the model takes after ``preprocess_input``."""
        return PREPROCESSINGS[self.preprocessing]

    @property
    def dream_weights(self) -> dict[str, float]:
        """DeepDream's layers as a new dict name -> weight (safe to modify)."""
        return dict(self.dream_layers)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every layer name of this record (no repeats, in field order)."""
        names = (
            self.content_layers + self.style_layers + tuple(n for n, _ in self.dream_layers)
            + (self.cam_layer,) + self.filter_layers + (self.fine_tune_from,) + self.vgg_layer_names
        )
        return tuple(dict.fromkeys(names))

    @property
    def vgg_layer_names(self) -> tuple[str, ...]:
        """For VGG backbones, every convolution and pooling layer in graph order; else ``()``."""
        return tuple(
            name
            for block, convs in enumerate(self.vgg_blocks, start=1)
            for name in [*(f"block{block}_conv{i}" for i in range(1, convs + 1)), f"block{block}_pool"]
        )

    def matches(self, model: Any) -> bool:
        """Whether ``model`` (a Keras model) is this backbone, judged by its name."""
        name = getattr(model, "name", None)
        if not isinstance(name, str):
            return False
        return name == self.keras_name or (self.name == "mobilenet_v2" and name.startswith(self.keras_name + "_"))

    def preprocess_input(self) -> Any:
        """The backbone's ``keras.applications`` ``preprocess_input`` function."""
        import keras

        return getattr(keras.applications, self.module).preprocess_input

    def build(
        self,
        *,
        weights: str | os.PathLike[str] | None = "imagenet",
        include_top: bool = False,
        input_shape: tuple[int | None, int | None, int] | None = None,
        float32: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Build the backbone (``weights``: ``"imagenet"``, None or a weights file).

        With ``float32=True`` the model computes in float32 whatever the global dtype
        policy (DeepDream and style transfer need float32 gradients).
        """
        model = application(self.name, weights=weights, include_top=include_top, input_shape=input_shape, **kwargs)
        return as_float32(model) if float32 else model


def as_float32(model: Any) -> Any:
    """``model`` if it computes in float32, else a float32 copy with the same weights."""
    import keras

    if all(layer.compute_dtype == "float32" for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)):
        return model

    def to_float32(layer: Any) -> Any:
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=to_float32)
    copy.set_weights(model.get_weights())
    return copy


def _vgg(name: str, constructor: str, blocks: tuple[int, ...]) -> Backbone:
    last = f"block5_conv{blocks[-1]}"
    return Backbone(
        name=name, module=name, constructor=constructor, keras_name=name, preprocessing="caffe", min_size=32,
        content_layers=("block5_conv2",),
        style_layers=tuple(f"block{b}_conv1" for b in range(1, 6)),
        dream_layers=((f"block3_conv{blocks[2]}", 0.5), (f"block4_conv{blocks[3]}", 1.0), (last, 1.5)),
        cam_layer=last,
        filter_layers=tuple(f"block{b}_conv1" for b in range(1, 6)),
        fine_tune_from="block5_conv1",
        vgg_blocks=blocks,
    )


_RESNET50 = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
_MOBILENET = ("Conv1_relu", "block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu")
_EFFICIENT = ("stem_activation", "block2b_add", "block3b_add", "block4c_add", "block6d_add")
_CONVNEXT = tuple(f"convnext_tiny_{part}" for part in (
    "stem", "downsampling_block_0", "downsampling_block_1", "downsampling_block_2", "stage_3_block_2_identity"))

_ALL: tuple[Backbone, ...] = (
    _vgg("vgg16", "VGG16", (2, 2, 3, 3, 3)),
    _vgg("vgg19", "VGG19", (2, 2, 4, 4, 4)),
    Backbone(
        name="inception_v3", module="inception_v3", constructor="InceptionV3", keras_name="inception_v3",
        preprocessing="tf", min_size=75,
        content_layers=("mixed5",),
        style_layers=("mixed0", "mixed1", "mixed2", "mixed4", "mixed7"),
        dream_layers=(("mixed4", 1.0), ("mixed5", 1.5), ("mixed6", 2.0), ("mixed7", 2.5)),
        cam_layer="mixed10",
        filter_layers=("mixed0", "mixed2", "mixed4", "mixed6", "mixed8"),
        fine_tune_from="mixed9",
    ),
    Backbone(
        name="resnet50", module="resnet50", constructor="ResNet50", keras_name="resnet50",
        preprocessing="caffe", min_size=32,
        content_layers=("conv4_block6_out",), style_layers=_RESNET50,
        dream_layers=(("conv3_block4_out", 0.5), ("conv4_block6_out", 1.0), ("conv5_block3_out", 1.5)),
        cam_layer="conv5_block3_out", filter_layers=("conv1_conv", *_RESNET50[1:]),
        fine_tune_from="conv5_block1_1_conv",
    ),
    Backbone(
        name="mobilenet_v2", module="mobilenet_v2", constructor="MobileNetV2", keras_name="mobilenetv2_1.00",
        preprocessing="tf", min_size=32,
        content_layers=("block_13_expand_relu",), style_layers=_MOBILENET,
        dream_layers=(("block_6_expand_relu", 1.0), ("block_13_expand_relu", 1.5)),
        cam_layer="out_relu",
        filter_layers=("Conv1", "block_3_expand", "block_6_expand", "block_13_expand", "Conv_1"),
        fine_tune_from="block_16_expand",
    ),
    Backbone(
        name="efficientnet_b0", module="efficientnet", constructor="EfficientNetB0", keras_name="efficientnetb0",
        preprocessing="none", min_size=32,
        content_layers=("block5c_add",), style_layers=_EFFICIENT,
        dream_layers=(("block4c_add", 1.0), ("block5c_add", 1.5), ("block6d_add", 2.0)),
        cam_layer="top_activation",
        filter_layers=("stem_conv", "block2a_expand_conv", "block4a_expand_conv", "block6a_expand_conv", "top_conv"),
        fine_tune_from="block7a_expand_conv",
    ),
    Backbone(
        name="convnext_tiny", module="convnext", constructor="ConvNeXtTiny", keras_name="convnext_tiny",
        preprocessing="none", min_size=32,
        content_layers=(_CONVNEXT[3],), style_layers=_CONVNEXT[:4],
        dream_layers=((_CONVNEXT[2], 1.0), (_CONVNEXT[3], 1.5)),
        cam_layer=_CONVNEXT[4],
        filter_layers=tuple(f"convnext_tiny_stage_{s}_block_0_depthwise_conv" for s in range(4)),
        fine_tune_from="convnext_tiny_stage_3_block_0_depthwise_conv",
    ),
    Backbone(
        name="resnet50v2", module="resnet_v2", constructor="ResNet50V2", keras_name="resnet50v2",
        preprocessing="tf", min_size=32,
        content_layers=("conv4_block6_out",),
        style_layers=("conv1_conv", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        dream_layers=(("conv3_block4_out", 0.5), ("conv4_block6_out", 1.0), ("conv5_block3_out", 1.5)),
        cam_layer="post_relu",
        filter_layers=("conv1_conv", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        fine_tune_from="conv5_block1_preact_bn",
    ),
    Backbone(
        name="xception", module="xception", constructor="Xception", keras_name="xception",
        preprocessing="tf", min_size=71,
        content_layers=("block10_sepconv3_act",),
        style_layers=("block1_conv1_act", "block2_sepconv2_act", "block3_sepconv2_act", "block4_sepconv2_act",
                      "block8_sepconv3_act"),
        dream_layers=(("block4_sepconv2_act", 1.0), ("block8_sepconv3_act", 1.5), ("block12_sepconv3_act", 2.0)),
        cam_layer="block14_sepconv2_act",
        filter_layers=("block1_conv1", "block3_sepconv1", "block6_sepconv1", "block10_sepconv1", "block14_sepconv1"),
        fine_tune_from="block14_sepconv1",
    ),
    Backbone(
        name="densenet121", module="densenet", constructor="DenseNet121", keras_name="densenet121",
        preprocessing="torch", min_size=32,
        content_layers=("pool4_conv",),
        style_layers=("conv1_relu", "pool2_conv", "pool3_conv", "pool4_conv", "conv5_block16_concat"),
        dream_layers=(("pool3_conv", 1.0), ("pool4_conv", 1.5)),
        cam_layer="relu",
        filter_layers=("conv1_conv", "pool2_conv", "pool3_conv", "pool4_conv"),
        fine_tune_from="conv5_block1_0_bn",
    ),
    Backbone(
        name="efficientnetv2_b0", module="efficientnet_v2", constructor="EfficientNetV2B0", keras_name="efficientnetv2-b0",
        preprocessing="none", min_size=32,
        content_layers=("block5e_add",),
        style_layers=("stem_activation", "block2b_add", "block3b_add", "block4c_add", "block6h_add"),
        dream_layers=(("block4c_add", 1.0), ("block5e_add", 1.5), ("block6h_add", 2.0)),
        cam_layer="top_activation",
        filter_layers=("stem_conv", "block3a_expand_conv", "block4a_expand_conv", "block6a_expand_conv", "top_conv"),
        fine_tune_from="block6a_expand_conv",
    ),
)

#: Every preset by name (read-only).
PRESETS: MappingProxyType[str, Backbone] = MappingProxyType({b.name: b for b in _ALL})

#: Spellings accepted besides the keys (Keras' model names without underscores).
_ALIASES: dict[str, str] = {"inceptionv3": "inception_v3", "mobilenetv2": "mobilenet_v2",
                            "efficientnetb0": "efficientnet_b0", "efficientnetv2b0": "efficientnetv2_b0"}


def preset(name: str, *, argument: str = "backbone") -> Backbone:
    """The preset of backbone ``name`` (``"vgg16"``; ``"inceptionv3"`` = ``"inception_v3"``).

    Raises [`InvalidArgumentError`][visionkit.errors.InvalidArgumentError] naming ``argument``
    and listing the known names for an unknown one.
    """
    if isinstance(name, Backbone):
        return name
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else None
    if key not in PRESETS:
        raise V.fail(argument, f"one of {sorted(PRESETS)}", name)
    return PRESETS[key]


def find_preset(model: Any) -> Backbone | None:
    """The preset whose backbone ``model`` is (judged by its name), or None."""
    for record in _ALL:
        if record.matches(model):
            return record
    return None


# ----------------------------------------------------------------------------- building them (offline errors)

#: name -> (module in keras.applications, constructor name), from the presets table.
APPLICATIONS: dict[str, tuple[str, str]] = {name: (b.module, b.constructor) for name, b in PRESETS.items()}

def keras_models_dir() -> Path:
    """Folder where Keras caches downloaded weights (``$KERAS_HOME/models``)."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "models"


def _constructor(name: str) -> Any:
    V.one_of("name", name, APPLICATIONS)
    import keras

    module, ctor = APPLICATIONS[name]
    return getattr(getattr(keras.applications, module), ctor)


def preprocess_function(name: str) -> Any:
    """The ``preprocess_input`` function matching backbone ``name``."""
    V.one_of("name", name, APPLICATIONS)
    import keras

    return getattr(keras.applications, APPLICATIONS[name][0]).preprocess_input


def application(
    name: str,
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    include_top: bool = False,
    input_shape: tuple[int | None, int | None, int] | None = None,
    **kwargs: Any,
) -> Any:
    """Build backbone ``name`` from ``keras.applications``.

    ``weights`` is ``"imagenet"`` (downloaded and cached by Keras), ``None`` (random),
    or a path to a weights file. An ImageNet download that fails raises
    [`WeightsUnavailableError`][visionkit.errors.WeightsUnavailableError] naming the file to place in the Keras cache;
    a weights file that does not fit names the file.
    """
    ctor = _constructor(name)
    if weights is None or weights == "imagenet":
        pass
    elif isinstance(weights, (str, os.PathLike)):
        model = ctor(weights=None, include_top=include_top, input_shape=input_shape, **kwargs)
        load_weights_file(model, weights, label=f"{name} (include_top={include_top})")
        return model
    else:
        raise V.fail("weights", "'imagenet', None or a path to a weights file", weights)
    try:
        return ctor(weights=weights, include_top=include_top, input_shape=input_shape, **kwargs)
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on URL failure
        if weights != "imagenet" or not _looks_like_download_error(exc):
            raise
        url = _url_in(str(exc))
        fname = url.rsplit("/", 1)[-1] if url else f"<the {name} weights file>"
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights of {name} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            f"On a machine without internet, download '{fname}'"
            + (f" from {url}" if url else "")
            + f" and place it at '{keras_models_dir() / fname}', or pass weights=<path> "
            "(a weights file) or weights=None (random weights)."
        ) from None


def load_weights_file(model: Any, weights: str | os.PathLike[str], *, label: str) -> Any:
    """Load a weights file into ``model`` in place; errors name the file and ``label``."""
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"Weights file not found: '{path}' (argument `weights`).")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py and Keras raise many unrelated types here
        raise WeightsUnavailableError(
            f"Could not load weights file '{path}' into {label}: {type(exc).__name__}: {exc}"
        ) from None
    return model


def _looks_like_download_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(k in text for k in ("url fetch failure", "urlopen", "http", "connection", "name resolution", "network", "socket", "timed out"))


def _url_in(text: str) -> str | None:
    m = re.search(r"https?://\S+?\.(?:h5|keras|weights\.h5)", text)
    return m.group(0) if m else None
