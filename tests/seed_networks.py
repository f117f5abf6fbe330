"""The networks of NVIDIA's "Getting Started With TensorFlow In DIGITS", as users will type them."""

# The seed's auto-encoder as printed: it refers to an undefined ``_x`` on line 13.
AUTOENCODER = """\
class UserModel(Tower):

    @model_property
    def inference(self):
        # the order for input shape is [0] -> H, [1] -> W, [2] -> C
        # this is because tensorflow's default order is NHWC
        model = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        image_dim = self.input_shape[0] * self.input_shape[1]
        with slim.arg_scope([slim.fully_connected],
                            weights_initializer=tf.contrib.layers.xavier_initializer(),
                            weights_regularizer=slim.l2_regularizer(0.0005)):
            # first we reshape the images to something
            model = tf.reshape(_x, shape=[-1, image_dim])
            # encode the image
            model = slim.fully_connected(model, 300, scope='fc1')
            model = slim.fully_connected(model, 50, scope='fc2')
            # decode the image
            model = slim.fully_connected(model, 300, scope='fc3')
            model = slim.fully_connected(model, image_dim, activation_fn=None, scope='fc4')
            # form it back to the original
            model = tf.reshape(model, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
            return model

    @model_property
    def loss(self):
        # In an autoencoder, we compare the encoded and then decoded image with the original
        original = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        # self.inference is called to get the processed image
        model = self.inference
        loss = digits.mse_loss(original, model)
        return loss
"""

# The seed's freezing example completed into a LeNet built with tf.get_variable; SUFFIX renames layer 2.
FREEZING = """\
class UserModel(Tower):

    @model_property
    def inference(self):
        self.weights = {
            'weight1': tf.get_variable('weight1', [5, 5, self.input_shape[2], 20],
                                       initializer=tf.contrib.layers.xavier_initializer()),
            'weight2': tf.get_variable('weight2SUFFIX', [5, 5, 20, 50],
                                       initializer=tf.contrib.layers.xavier_initializer()),
        }
        self.biases = {
            'bias1': tf.get_variable('bias1', [20], initializer=tf.constant_initializer(0.0)),
            'bias2': tf.get_variable('bias2SUFFIX', [50], initializer=tf.constant_initializer(0.0)),
        }
        model = self.x * 0.0125
        model = tf.nn.relu(tf.nn.conv2d(model, self.weights['weight1'], [1, 1, 1, 1], 'VALID') + self.biases['bias1'])
        model = tf.nn.max_pool2d(model, 2, 2, 'VALID')
        model = tf.nn.relu(tf.nn.conv2d(model, self.weights['weight2'], [1, 1, 1, 1], 'VALID') + self.biases['bias2'])
        model = tf.nn.max_pool2d(model, 2, 2, 'VALID')
        model = slim.flatten(model)
        return slim.fully_connected(model, self.nclasses, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return digits.classification_loss(self.inference, self.y)
"""
