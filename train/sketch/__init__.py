"""Sketch to face (`train pix2pix`): everything the sketch model needs beyond the generic trainer.

- drawing: any picture of a drawing -> the line map the model was trained on;
- augment: training sketches made to look hand-drawn;
- hints: colour hints (`--hints`): sampled from real faces in training, read from a hint picture at use;
- paint: a trained model paints sketches (the app's Draw page, `train sample --sketch`, eval);
- metrics, evaluate: fidelity to the sketch and the sketch run's scorer, built on train.eval's pieces;
- report: what `train eval` prints and `train compare` shows of sketch runs;
- hooks: SKETCH_EVALUATION, the evaluation hook pix2pix's loss class carries (train.eval.hooks).

The arrows point down into train.eval, never back: train.eval finds this room through the hook.
"""
