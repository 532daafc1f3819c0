"""Build a tiny face-embedding network in every format tools/convert reads.

Run as a script (TensorFlow must not share a process with the TFLite runtimes):
    python tests/tools/tiny_models.py OUT_DIR
Writes tiny.h5 (Keras 2), tiny.keras (Keras 3), tiny_saved/ (SavedModel),
tiny.pb (frozen graph, input "input", output "embeddings"), and not_embedding.h5
(a model whose output is a feature map, not an embedding).  Input 32x32x3, 16-d.
Also liveness.h5 (a conv classifier: one logit) and liveness_two.h5 (two outputs).
"""

import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf_keras


def build(lib, out_features: bool = False, outputs: int = 16, name: str = "embeddings"):
    layers = lib.layers
    inp = layers.Input((32, 32, 3), name="input")
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    if out_features:
        return lib.Model(inp, x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(outputs, name=name)(x)
    return lib.Model(inp, x)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tf_keras.utils.set_random_seed(
        0
    )  # Python, NumPy and TensorFlow: the same tiny models every run
    m2 = build(tf_keras)
    m2.save(out / "tiny.h5")
    build(tf_keras, out_features=True).save(out / "not_embedding.h5")
    live = build(tf_keras, outputs=1, name="live_logit")
    # An untrained unit puts every logit near 0, where int8 rounding flips live/attack verdicts at
    # p = 0.5 by chance; a bias of 3 (p ~ 0.95) keeps the parity tests about conversion, not luck.
    kernel, _ = live.get_layer("live_logit").get_weights()
    live.get_layer("live_logit").set_weights([kernel, np.array([3.0], np.float32)])
    live.save(out / "liveness.h5")
    build(tf_keras, outputs=2, name="live_logits").save(out / "liveness_two.h5")
    import keras

    m3 = build(keras)
    m3.set_weights(m2.get_weights())
    m3.save(out / "tiny.keras")
    tf.saved_model.save(m2, str(out / "tiny_saved"))
    fn = tf.function(lambda x: tf.identity(m2(x, training=False), name="embeddings"))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, 32, 32, 3], tf.float32, name="input"))
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete)
    tf.io.write_graph(frozen.graph.as_graph_def(), str(out), "tiny.pb", as_text=False)
    np.save(
        out / "names.npy",
        np.array([t.name for t in frozen.inputs] + [t.name for t in frozen.outputs]),
    )
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
