// The small CNN audio tower: shapes, seeded determinism, config round trip, and that it can fit a tiny batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "model/cnn_audio.h"
#include "synclap/error.h"

using namespace synclap;

namespace {

torch::Tensor fake_logmel(int64_t b, int64_t c, int64_t t, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn({b, c, t, 64}, gen) * 12.0 - 45.0;  // dB-like values
}

}  // namespace

TEST(CnnAudio, ShapesAndChannels) {
  CnnAudioConfig cfg;
  cfg.hidden_size = 96;  // differs from the last width: a Linear maps 256 -> 96
  CnnAudioEncoder enc(cfg);
  enc->init_weights(1);
  enc->eval();
  torch::NoGradGuard no_grad;
  auto x = fake_logmel(3, 4, 1001, 11);
  auto out = enc->forward(x, torch::zeros({3}, torch::kBool), true);
  EXPECT_EQ(out.pooler_output.sizes(), (std::vector<int64_t>{3, 96}));
  // 5 stride-2 blocks: 1001x64 -> 32x2; last_hidden_state is [B, C, F', T'].
  EXPECT_EQ(out.last_hidden_state.sizes(), (std::vector<int64_t>{3, 256, 2, 32}));
  ASSERT_EQ(out.hidden_states.size(), cfg.channels.size());
  EXPECT_EQ(out.hidden_states[0].sizes(), (std::vector<int64_t>{3, 16, 501, 32}));
  EXPECT_EQ(out.batch_norm_out.sizes(), (std::vector<int64_t>{3, 1, 1001, 64}));
  // Only channel 0 is read: the fused 4-channel input gives the same result as channel 0 alone.
  auto only0 = enc->forward(x.slice(1, 0, 1).contiguous()).pooler_output;
  EXPECT_TRUE(torch::allclose(only0, out.pooler_output, 1e-6, 1e-6));
  // Other lengths work too.
  EXPECT_EQ(enc->forward(fake_logmel(2, 1, 300, 12)).pooler_output.sizes(), (std::vector<int64_t>{2, 96}));
  // Batch rows are independent in eval mode.
  auto row = enc->forward(x.slice(0, 1, 2)).pooler_output;
  EXPECT_LE((row - out.pooler_output.slice(0, 1, 2)).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(enc->forward(torch::zeros({1, 1, 100, 32})), synclap::Error);
}

TEST(CnnAudio, SeededAndDeterministic) {
  CnnAudioConfig cfg;
  CnnAudioEncoder a(cfg), b(cfg), c(cfg);
  a->init_weights(5);
  b->init_weights(5);
  c->init_weights(6);
  a->eval();
  b->eval();
  c->eval();
  torch::NoGradGuard no_grad;
  auto x = fake_logmel(2, 1, 1001, 3);
  auto ya = a->forward(x).pooler_output;
  EXPECT_TRUE(torch::equal(ya, b->forward(x).pooler_output));
  EXPECT_TRUE(torch::equal(ya, a->forward(x).pooler_output));
  EXPECT_FALSE(torch::equal(ya, c->forward(x).pooler_output));
  EXPECT_EQ(ya.size(1), 256);  // no fc when hidden_size == last width
  EXPECT_FALSE(a->fc);
}

TEST(CnnAudio, ConfigRoundTrip) {
  CnnAudioConfig cfg;
  cfg.channels = {8, 16, 32};
  cfg.convs_per_block = 2;
  cfg.hidden_size = 40;
  cfg.dropout = 0.25;
  auto back = CnnAudioConfig::from_json(cfg.to_json());
  EXPECT_EQ(back.channels, cfg.channels);
  EXPECT_EQ(back.convs_per_block, 2);
  EXPECT_EQ(back.hidden_size, 40);
  EXPECT_DOUBLE_EQ(back.dropout, 0.25);
  auto j = cfg.to_json();
  j["convs_per_block"] = 3;
  EXPECT_THROW(CnnAudioConfig::from_json(j), synclap::Error);
  j = cfg.to_json();
  j["channels"] = "wide";
  EXPECT_THROW(CnnAudioConfig::from_json(j), synclap::Error);
}

// Eight random clips, four classes, a linear head: the tower must memorise them.
TEST(CnnAudio, OverfitsTinyBatch) {
  torch::manual_seed(0);
  CnnAudioConfig cfg;
  cfg.channels = {8, 16, 32, 64};
  cfg.hidden_size = 64;
  cfg.dropout = 0.0;
  CnnAudioEncoder enc(cfg);
  enc->init_weights(3);
  torch::nn::Linear head(64, 4);
  auto x = fake_logmel(8, 1, 128, 21);
  auto y = torch::tensor({0, 1, 2, 3, 0, 1, 2, 3}, torch::kLong);
  std::vector<torch::Tensor> params = enc->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
  enc->train();
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(head(enc->forward(x).pooler_output), y);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  std::printf("    loss %.4f -> %.4f\n", first, last);
  EXPECT_LT(last, 0.05);
  EXPECT_LT(last, first / 10);
  torch::NoGradGuard no_grad;
  auto pred = head(enc->forward(x).pooler_output).argmax(1);
  EXPECT_TRUE(torch::equal(pred, y));
}

// Temporal layers: residual dilated convolutions over the last map's frames. They start as the identity (the
// same seed gives the same embedding as the tower without them), widen what one output frame hears, are kept
// by the config and are named temporal.N.{conv,bn}.
TEST(CnnAudio, TemporalLayersStartAsIdentityAndWidenTheView) {
  CnnAudioConfig plain_cfg, cfg;
  cfg.temporal_layers = 3;
  CnnAudioEncoder plain(plain_cfg), enc(cfg);
  plain->init_weights(7);
  enc->init_weights(7);
  plain->eval();
  enc->eval();
  torch::NoGradGuard no_grad;
  auto x = fake_logmel(2, 1, 1001, 5);
  EXPECT_TRUE(torch::equal(plain->forward(x).pooler_output, enc->forward(x).pooler_output));

  // With the scales at 1 the layers act. Frame 0 of the last map (32 input frames apart) then hears audio beyond
  // the blocks' receptive field (187 frames, so frame 0 reaches frame 96 at most): change only frames 200..1000
  // and compare frame 0 of the mean over frequency before and after the layers (dilations 1, 2, 4 reach 7
  // frames of the map = 224 input frames further). The pooled max + mean hears the whole clip either way.
  for (auto& m : *enc->temporal) m->as<CnnTemporalLayerImpl>()->bn->weight.fill_(1.0);
  auto y = x.clone();
  y.slice(2, 200, 1001).add_(20.0);
  auto frame0 = [&](CnnAudioEncoder& e, const torch::Tensor& in) {
    auto out = e->forward(in, {}, true);
    auto t = out.last_hidden_state.mean(2);  // [B, C, T'] before the temporal layers
    for (auto& m : *e->temporal) t = m->as<CnnTemporalLayerImpl>()->forward(t);
    return std::make_pair(out.last_hidden_state.mean(2).select(2, 0), t.select(2, 0));
  };
  auto [before_x, after_x] = frame0(enc, x);
  auto [before_y, after_y] = frame0(enc, y);
  EXPECT_TRUE(torch::equal(before_x, before_y));  // the blocks alone do not reach that far
  EXPECT_GT((after_x - after_y).abs().max().item<double>(), 1e-3);  // the layers do
  EXPECT_FALSE(torch::equal(plain->forward(x).pooler_output, enc->forward(x).pooler_output));

  std::vector<std::string> names;
  for (const auto& p : enc->named_parameters()) names.push_back(p.key());
  EXPECT_NE(std::find(names.begin(), names.end(), "temporal.2.conv.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "temporal.0.bn.weight"), names.end());
  EXPECT_EQ(enc->temporal[2]->as<CnnTemporalLayerImpl>()->conv->options.dilation()->at(0), 4);

  auto back = CnnAudioConfig::from_json(cfg.to_json());
  EXPECT_EQ(back.temporal_layers, 3);
  EXPECT_FALSE(plain_cfg.to_json().contains("temporal_layers"));  // configs without the layers read as before
  auto j = cfg.to_json();
  j["temporal_layers"] = -1;
  EXPECT_THROW(CnnAudioConfig::from_json(j), synclap::Error);
}
