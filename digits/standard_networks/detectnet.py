# A small single-shot grid detector in the spirit of DetectNet, for object detection datasets.
# self.x is NHWC; self.y holds the box rows [N, M, 6, 1] ([left, top, right, bottom, kind, class]).
# Three poolings give one grid cell per 8x8 pixels. Each cell predicts a coverage (is an object's centre
# here), four box distances and the class; digits.detection_loss computes the targets and the loss, and
# DIGITS turns the grid into boxes (non-maximum suppression) for validation, inference and export.
# WIDTH scales every layer: 1 trains on a CPU in minutes on 128x128 images; try 4 (or more) on a GPU.
# ruff: noqa
# fmt: off
WIDTH = 1


class UserModel(Tower):

    @model_property
    def inference(self):
        x = self.x / 255.0
        classes = self.nclasses or 1
        with slim.arg_scope([slim.conv2d], weights_initializer=tf.contrib.layers.xavier_initializer(),
                            weights_regularizer=slim.l2_regularizer(1e-5)):
            model = slim.conv2d(x, 16 * WIDTH, [3, 3], scope='conv1')
            model = slim.max_pool2d(model, [2, 2], scope='pool1')
            model = slim.conv2d(model, 32 * WIDTH, [3, 3], scope='conv2')
            model = slim.max_pool2d(model, [2, 2], scope='pool2')
            model = slim.conv2d(model, 64 * WIDTH, [3, 3], scope='conv3')
            model = slim.max_pool2d(model, [2, 2], scope='pool3')
            model = slim.conv2d(model, 64 * WIDTH, [3, 3], scope='conv4')
            # Dilated: each cell sees about 60 pixels, room for the largest objects around it.
            model = slim.conv2d(model, 64 * WIDTH, [3, 3], rate=2, scope='conv5')
            # Coverage starts near 1% everywhere (its bias), so the first steps are not swamped by background.
            bias = tf.constant_initializer([-4.6] + [0.0] * (4 + classes))
            model = slim.conv2d(model, 5 + classes, [1, 1], activation_fn=None, biases_initializer=bias,
                                scope='grid')
        return model

    @model_property
    def loss(self):
        return digits.detection_loss(self.inference, self.y, self.input_shape, self.summaries)
